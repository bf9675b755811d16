// The signed-in session: Cognito's ID token, renewed with the refresh token before it expires.
// Cognito's ID token lives an hour (the app client's default); the refresh token (30 days, auth_stack.py) gets a
// new one without the password, so a user is asked to sign in again only when that ends or is revoked. A token's
// lifetime counts from when this browser received it (exp - iat), so a clock that is off does not make every call
// renew it. No DOM here: app.js wires it to fetch and sessionStorage; tests/unit/web/test_session.py runs it in Node.

export const RENEW_BEFORE_MS = 5 * 60 * 1000;
const STORAGE_KEY = "bulwark.session";

export function claims(token) {
  const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(atob(part + "=".repeat((4 - (part.length % 4)) % 4)));
}

export class Session {
  // `cognito(action, body)`: a Cognito API call that rejects with an Error whose `type` is Cognito's error type
  // when it answered (NotAuthorizedException: the refresh token is expired or revoked) and none when it could
  // not be reached.
  constructor({ cognito, clientId, storage, now = () => Date.now() }) {
    this.cognito = cognito;
    this.clientId = clientId;
    this.storage = storage;
    this.now = now;
    this.token = null;
    this.email = null;
    this.refreshToken = null;
    this.expiresAt = 0;
    this.renewing = null;
    this.generation = 0;  // a new sign-in or a sign-out: a renewal started before it is discarded
  }

  // Cognito's AuthenticationResult after a sign-in or a renewal (which carries no new refresh token).
  keep(auth, email) {
    if (auth.RefreshToken) this.generation += 1;  // a sign-in (a renewal carries no refresh token)
    const { exp, iat } = claims(auth.IdToken);
    this.token = auth.IdToken;
    this.refreshToken = auth.RefreshToken || this.refreshToken;
    this.expiresAt = this.now() + (exp - iat) * 1000;
    this.email = email;
    this.storage.setItem(STORAGE_KEY, JSON.stringify({
      token: this.token, email, refreshToken: this.refreshToken, expiresAt: this.expiresAt,
    }));
  }

  // The saved session of this tab, if it can still be used (a token that has expired with nothing to renew it
  // with cannot). True when signed in.
  restore() {
    const saved = JSON.parse(this.storage.getItem(STORAGE_KEY) || "null");
    if (!saved || !saved.token) return false;
    const expiresAt = saved.expiresAt || claims(saved.token).exp * 1000;
    if (expiresAt <= this.now() && !saved.refreshToken) return false;
    this.token = saved.token;
    this.email = saved.email;
    this.refreshToken = saved.refreshToken || null;
    this.expiresAt = expiresAt;
    return true;
  }

  // The token to send: renewed first when it expires within RENEW_BEFORE_MS, or when `force` (the API said 401).
  // One renewal at a time. If Cognito refuses the refresh token (expired, revoked) it is dropped, and the API's
  // 401 then asks the user to sign in again; if Cognito cannot be reached or throttles, the current token is used.
  // A renewal that ends after a sign-out or another sign-in changes nothing.
  async current({ force = false } = {}) {
    if (!this.token) return null;
    if (!force && this.expiresAt - this.now() > RENEW_BEFORE_MS) return this.token;
    if (!this.refreshToken) return this.token;
    if (!this.renewing) {
      const generation = this.generation;
      const current = () => generation === this.generation;
      const renewing = this.cognito("InitiateAuth", {
        AuthFlow: "REFRESH_TOKEN_AUTH", ClientId: this.clientId,
        AuthParameters: { REFRESH_TOKEN: this.refreshToken },
      })
        .then((result) => { if (current()) this.keep(result.AuthenticationResult, this.email); })
        .catch((error) => { if (current() && error.type === "NotAuthorizedException") this.refreshToken = null; })
        .finally(() => { if (this.renewing === renewing) this.renewing = null; });
      this.renewing = renewing;
    }
    await this.renewing;
    return this.token;
  }

  // Forget the session here and revoke the refresh token (and the tokens it issued) at Cognito; never waits.
  signOut() {
    if (this.refreshToken) {
      this.cognito("RevokeToken", { ClientId: this.clientId, Token: this.refreshToken }).catch(() => {});
    }
    this.generation += 1;
    this.renewing = null;
    this.storage.removeItem(STORAGE_KEY);
    this.token = null;
    this.email = null;
    this.refreshToken = null;
    this.expiresAt = 0;
  }
}
