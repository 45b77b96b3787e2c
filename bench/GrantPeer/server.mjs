// The peer a user would pick instead of the broker: Grant 5 (the most used Node OAuth middleware) on express with
// express-session, doing the broker's hops for bench/FlowBench. GET /auth/github?redirect_uri=&state= keeps the
// instance's redirect and state in the session, Grant runs GitHub's authorization-code flow (its own one-time state,
// PKCE S256), and its callback reads /user and /user/emails before redirecting to the instance with the token and
// the instance's state. No database and no token crypto: it does less than the broker, which is the point.
import express from 'express';
import session from 'express-session';
import grant from 'grant';

const port = Number(process.env.PORT);
const origin = `http://127.0.0.1:${port}`;
const gitHub = process.env.GITHUB_BASE_URL;
const api = process.env.GITHUB_API_URL;
const allowed = new Set([process.env.CALLBACK]);

const app = express();
app.disable('x-powered-by');
app.get('/readyz', (req, res) => res.json({ ready: true }));
app.use(session({ secret: process.env.SESSION_SECRET, resave: false, saveUninitialized: false, cookie: { httpOnly: true, sameSite: 'lax' } }));
app.get('/auth/github', (req, res, next) => {
  if (typeof req.query.redirect_uri !== 'string' || !allowed.has(req.query.redirect_uri)) return res.status(400).send('redirect_uri refused');
  req.session.instance = { redirectUri: req.query.redirect_uri, state: typeof req.query.state === 'string' ? req.query.state : '' };
  next();
});
app.use(grant.express({
  defaults: { origin, prefix: '/auth', transport: 'state', state: true, pkce: true },
  github: {
    key: process.env.GITHUB_CLIENT_ID,
    secret: process.env.GITHUB_CLIENT_SECRET,
    scope: ['read:user', 'user:email'],
    authorize_url: `${gitHub}/login/oauth/authorize`,
    access_url: `${gitHub}/login/oauth/access_token`,
  },
}));
app.get('/auth/github/callback', async (req, res) => {
  const token = res.locals.grant?.response?.access_token;
  const instance = req.session.instance;
  if (!token || !instance) return res.status(400).send('sign-in failed');
  const headers = { authorization: `Bearer ${token}`, 'user-agent': 'grant-peer', accept: 'application/vnd.github+json' };
  const user = await (await fetch(`${api}/user`, { headers })).json();
  if (!user.email) await (await fetch(`${api}/user/emails`, { headers })).json();
  req.session.instance = undefined;
  const target = new URL(instance.redirectUri);
  target.searchParams.set('token', token);
  target.searchParams.set('state', instance.state);
  res.redirect(target.toString());
});

app.listen(port, '127.0.0.1');
