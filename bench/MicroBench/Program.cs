// Micro-benchmarks of the broker's hot paths. Usage: dotnet run -c Release --project bench/MicroBench [-- --filter *]
using BenchmarkDotNet.Running;

BenchmarkSwitcher.FromAssembly(typeof(MicroBench.RedirectMatching).Assembly).Run(args.Length == 0 ? ["--filter", "*"] : args);
