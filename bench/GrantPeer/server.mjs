// The peer a user would pick instead of the broker: Grant 5 (the most used Node OAuth middleware) on express with
// express-session, doing the broker's hops for bench/FlowBench. GET /auth/github?redirect_uri=&state= keeps the
// instance's redirect and state in the session, Grant runs GitHub's authorization-code flow (its own one-time state,
// PKCE S256) and reads /user itself (its `profile` response, through its own HTTP client, request-compose), and the
// callback reads /user/emails with that same client when the profile hides the address, before redirecting to the
// instance with the token and the instance's state. No database and no token crypto: it does less than the broker,
// which is the point. (Node's fetch was used for the API calls at first: in this Node 20 its undici stack was a third of
// the peer's CPU, which measured fetch rather than Grant.)
import express from 'express';
import session from 'express-session';
import grant from 'grant';
import compose from 'request-compose';

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
    profile_url: `${api}/user`,
    response: ['tokens', 'profile'],
  },
}));
app.get('/auth/github/callback', async (req, res) => {
  const response = res.locals.grant?.response;
  const token = response?.access_token;
  const instance = req.session.instance;
  if (!token || !instance || !response.profile || response.profile.error) return res.status(400).send('sign-in failed');
  if (!response.profile.email) {
    const headers = { authorization: `Bearer ${token}`, 'user-agent': 'grant-peer', accept: 'application/vnd.github+json' };
    await compose.client({ method: 'GET', url: `${api}/user/emails`, headers });
  }
  req.session.instance = undefined;
  const target = new URL(instance.redirectUri);
  target.searchParams.set('token', token);
  target.searchParams.set('state', instance.state);
  res.redirect(target.toString());
});

app.listen(port, '127.0.0.1');
