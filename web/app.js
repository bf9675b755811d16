// Bulwark web client: Cognito sign-in, chat, history, jobs, documents, and regional failover.
// No framework and no build step: the runtime config (config.json) is written at deploy time
// from stack outputs (or served by the local sandbox).

import { citationList, mountDocuments } from "./documents.js";
import { newSrpSecret, passwordClaim } from "./srp.js";
import { firstHealthy, siteAnswers } from "./outage.js";
import { Session } from "./session.js";

const $ = (id) => document.getElementById(id);
// `session`: the signed-in user's tokens (session.js), renewed before they expire.
const state = { config: null, endpoint: 0, session: null, conversationId: null, documents: null };

async function loadConfig() {
  const response = await fetch("config.json", { cache: "no-store" });
  if (!response.ok) throw new Error("config.json is missing: the WebContent stack writes it at deploy time");
  state.config = await response.json();
  state.config.apiEndpoints = state.config.apiEndpoints.map((url) => url.replace(/\/$/, ""));
}

// --- sign-in (Cognito: SRP, then whatever challenges the pool asks for) ------------------------
// In AWS the web client allows USER_SRP_AUTH only: the password never leaves the browser. The sandbox
// (config.local) signs in with USER_PASSWORD_AUTH instead, because moto, its embedded AWS, does not
// verify SRP (it accepts any proof): password auth is sandbox-only and not enabled on the AWS client.
async function cognito(action, body) {
  const { region, cognitoEndpoint } = state.config;
  const response = await fetch(cognitoEndpoint || `https://cognito-idp.${region}.amazonaws.com/`, {
    method: "POST",
    headers: {
      "Content-Type": "application/x-amz-json-1.1",
      "X-Amz-Target": `AWSCognitoIdentityProviderService.${action}`,
    },
    body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(data.message || data.__type || `sign-in failed (${response.status})`);
    error.type = data.__type;  // Cognito's error type (NotAuthorizedException: a wrong password, a revoked token)
    throw error;
  }
  return data;
}

async function signIn(email, password) {
  const { clientId: ClientId, userPoolId } = state.config;
  let result;
  if (state.config.local) {
    result = await cognito("InitiateAuth", {
      AuthFlow: "USER_PASSWORD_AUTH", ClientId, AuthParameters: { USERNAME: email, PASSWORD: password },
    });
  } else {
    const { a, srpA } = newSrpSecret();
    const start = await cognito("InitiateAuth", {
      AuthFlow: "USER_SRP_AUTH", ClientId, AuthParameters: { USERNAME: email, SRP_A: srpA },
    });
    const p = start.ChallengeParameters || {};
    if (start.ChallengeName !== "PASSWORD_VERIFIER") throw new Error("sign-in failed: unexpected answer from Cognito");
    const claim = await passwordClaim({ poolId: userPoolId, userId: p.USER_ID_FOR_SRP, password, a,
                                        srpB: p.SRP_B, salt: p.SALT, secretBlock: p.SECRET_BLOCK });
    result = await cognito("RespondToAuthChallenge", {
      ChallengeName: "PASSWORD_VERIFIER", ClientId, Session: start.Session,
      ChallengeResponses: { USERNAME: p.USER_ID_FOR_SRP, PASSWORD_CLAIM_SECRET_BLOCK: p.SECRET_BLOCK,
                            PASSWORD_CLAIM_SIGNATURE: claim.signature, TIMESTAMP: claim.timestamp },
    });
  }
  result = await answerChallenges(result, email);
  state.session.keep(result.AuthenticationResult, email);
}

// The steps Cognito may ask for after the password: a new password (an invited user's first sign-in),
// enrolling an authenticator app (MFA required, none set up yet), or its current code.
async function answerChallenges(result, email) {
  const ClientId = state.config.clientId;
  while (result.ChallengeName) {
    const name = result.ChallengeName;
    const params = result.ChallengeParameters || {};
    const USERNAME = params.USER_ID_FOR_SRP || params.USERNAME || email;
    let Session = result.Session;
    let responses;
    if (name === "NEW_PASSWORD_REQUIRED") {
      responses = { USERNAME, NEW_PASSWORD: await askFor("new-password-form", "new-password") };
    } else if (name === "MFA_SETUP") {
      const token = await cognito("AssociateSoftwareToken", { Session });
      $("totp-secret").textContent = token.SecretCode;
      $("totp-link").href = `otpauth://totp/Bulwark:${encodeURIComponent(email)}?secret=${token.SecretCode}&issuer=Bulwark`;
      $("totp-setup").hidden = false;
      const verified = await cognito("VerifySoftwareToken", {
        Session: token.Session, UserCode: await askFor("code-form", "code"), FriendlyDeviceName: "Bulwark web",
      });
      $("totp-setup").hidden = true;
      Session = verified.Session;
      responses = { USERNAME };
    } else if (name === "SOFTWARE_TOKEN_MFA") {
      responses = { USERNAME, SOFTWARE_TOKEN_MFA_CODE: await askFor("code-form", "code") };
    } else {
      throw new Error(`sign-in needs a step this page does not offer (${name}): ask an administrator`);
    }
    result = await cognito("RespondToAuthChallenge", { ChallengeName: name, ClientId, Session, ChallengeResponses: responses });
  }
  if (!result.AuthenticationResult) throw new Error("sign-in failed: Cognito returned no tokens");
  return result;
}

// Shows one step's form and resolves with its input's value when the user submits it.
function askFor(formId, inputId) {
  for (const id of ["sign-in-form", "new-password-form", "code-form"]) $(id).hidden = id !== formId;
  $(inputId).value = "";
  $(inputId).focus();
  return new Promise((resolve) => {
    $(formId).addEventListener("submit", (event) => {
      event.preventDefault();
      $("sign-in-error").textContent = "";
      resolve($(inputId).value);
    }, { once: true });
  });
}

// --- API calls, with failover across the regional endpoints -----------------------------------
class ApiError extends Error {
  constructor(status, message, retryAfter, budget = null) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
    this.budget = budget;  // a 429 for the daily token budget: { used, limit, resets_at }
  }
}

async function api(method, path, body, extraHeaders = {}) {
  const endpoints = state.config.apiEndpoints;
  let renewed = false;
  for (let attempt = 0; attempt < endpoints.length; attempt++) {
    const base = endpoints[state.endpoint];
    const token = await state.session.current();
    let response;
    try {
      response = await fetch(base + path, {
        method,
        headers: { Authorization: token, "Content-Type": "application/json", ...extraHeaders },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (networkError) {
      if (await failOver()) continue;
      await leaveForStaticPage();
      throw new ApiError(0, "the service cannot be reached: check your connection and try again");
    }
    if ((response.status === 502 || response.status === 504) && (await failOver())) continue;
    if (response.status === 401 && !renewed && state.session.refreshToken) {  // expired early or revoked: renew once
      renewed = true;
      await state.session.current({ force: true });
      attempt--;
      continue;
    }
    if (response.status === 401) sessionEnded();  // nothing renews it (or the API refused the renewed one too)
    const text = await response.text();
    const data = text ? JSON.parse(text) : null;
    if (response.ok) return { status: response.status, data };
    throw new ApiError(response.status, (data && data.message) || response.statusText,
                       Number(response.headers.get("Retry-After")) || null, (data && data.budget) || null);
  }
  await leaveForStaticPage();
  throw new ApiError(0, "no region is answering right now; try again in a minute");
}

// Neither region's API answers (a fresh probe of every /health) while the site itself does: the static help
// page takes over (fallback.html, from CloudFront/S3, no API involved) and brings the user back when a region
// answers. If the site does not answer either, this browser is offline: the error message stays.
async function leaveForStaticPage() {
  if ((await firstHealthy(state.config.apiEndpoints)) !== null) return;
  if (!(await siteAnswers())) return;
  location.assign("fallback.html");
}

async function failOver() {
  // Probe the next region's public health route; switch only if it answers.
  const endpoints = state.config.apiEndpoints;
  for (let step = 1; step < endpoints.length; step++) {
    const next = (state.endpoint + step) % endpoints.length;
    try {
      const probe = await fetch(endpoints[next] + "/health", { cache: "no-store" });
      if (probe.ok) {
        state.endpoint = next;
        showRegion();
        return true;
      }
    } catch (_) { /* that region is down too */ }
  }
  return false;
}

function describeError(error) {
  if (!(error instanceof ApiError)) return error.message;
  const wait = error.retryAfter ? ` Try again in ${error.retryAfter} s.` : "";
  if (error.status === 401) return "Your session has ended: sign in again.";
  if (error.status === 429 && error.budget) {
    const resets = new Date(error.budget.resets_at).toLocaleString();
    return `Your daily token budget is used (${error.budget.used} / ${error.budget.limit} tokens): it resets at ${resets}.`;
  }
  if (error.status === 429) return `Too many requests.${wait}`;
  if (error.status === 503) return `${error.message}${wait}`;
  return error.message + wait;
}

// --- rendering ------------------------------------------------------------------------------
// "tokens today: used / limit", from the chat answer's (or a job's, or a 429's) `budget`; hidden when there is none.
function showBudget(budget) {
  if (!budget) return;
  const node = $("budget");
  node.textContent = `tokens today: ${budget.used} / ${budget.limit}`;
  node.title = `resets at ${new Date(budget.resets_at).toLocaleString()}`;
  node.hidden = false;
}

function showRegion() {
  const base = state.config.apiEndpoints[state.endpoint] || "";
  $("region").textContent = state.config.local ? "local sandbox" : base.replace(/^https:\/\/[^.]+\.execute-api\.([^.]+)\..*/, "$1");
  if (state.config.local && !$("status-link")) {  // the sandbox's status page (web/status.html): local mode only
    const link = document.createElement("a");
    link.id = "status-link";
    link.href = "status.html";
    link.textContent = "sandbox status";
    $("region").after(link);
  }
}

function addMessage(role, text, details) {
  const node = document.createElement("div");
  node.className = `msg ${role}`;
  node.textContent = text;
  if (details) {
    if (details.meta) {
      const meta = document.createElement("span");
      meta.className = "meta";
      meta.textContent = details.meta;
      node.append(meta);
    }
    if (details.note) {
      const note = document.createElement("span");
      note.className = "note";
      note.textContent = details.note;
      node.append(note);
      node.classList.add("degraded");
    }
    if (details.retrievalNote) {
      const note = document.createElement("span");
      note.className = "retrieval-note";
      note.textContent = details.retrievalNote;
      node.append(note);
    }
    if (details.citations && details.citations.length) node.append(citationList(details.citations));
  }
  $("messages").append(node);
  node.scrollIntoView({ block: "end" });
  return node;
}

function answerDetails(answer) {
  const primary = state.config.primaryTarget || null;
  const target = answer.target || {};
  const passages = target.model_id === "passages";  // no model could answer: the best passages, quoted
  const who = target.model_id === "cache" ? "a cached answer"
            : target.model_id === "curated" ? "a curated answer"
            : target.model_id === "greeting" ? "a quick reply, no model needed"
            : target.model_id === "none" ? "no model"
            : passages ? "passages from your documents" : `${target.model_id} in ${target.region}`;
  const details = { meta: `answered by ${who}`, citations: answer.citations || [] };
  if (answer.usage && answer.usage.total_tokens) details.meta += ` · ${answer.usage.total_tokens} tokens`;
  if (answer.retrieval && !answer.retrieval.used) {
    details.retrievalNote = `Answered without your documents: ${answer.retrieval.reason || "they were not searched"}`;
  }
  if (passages) {
    details.note = "Passages from your documents, not a written answer: no model could answer "
                 + `(${answer.degraded_reason || "the models are unavailable"}).`;
  } else if (answer.degraded && answer.matchedQuestion) {
    // No model could answer: the operators' prepared answer to the closest question (shown, so the user can judge).
    details.note = `Prepared answer to "${answer.matchedQuestion}": no model could answer right now.`;
  } else if (answer.degraded) {
    details.note = `Degraded answer: ${answer.degraded_reason || "the model could not answer"}`;
  } else if (primary && (target.model_id !== primary.model_id || target.region !== primary.region)) {
    details.note = `Answered by the fallback model (${target.model_id} in ${target.region}): the primary is unavailable.`;
  }
  if (answer.guardrail_intervened) details.note = "The content guardrail blocked this request.";
  return details;
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

async function refreshConversations() {
  const { data } = await api("GET", "/conversations");
  const list = $("conversations");
  list.replaceChildren();
  for (const conversation of data.conversations) {
    const item = document.createElement("li");
    if (conversation.conversation_id === state.conversationId) item.classList.add("current");
    const open = document.createElement("button");
    open.className = "open";
    open.textContent = conversation.title;
    open.addEventListener("click", () => openConversation(conversation.conversation_id));
    const remove = document.createElement("button");
    remove.className = "delete";
    remove.title = "Delete";
    remove.textContent = "✕";
    remove.addEventListener("click", () => deleteConversation(conversation.conversation_id));
    item.append(open, remove);
    list.append(item);
  }
}

async function openConversation(id) {
  try {
    const { data } = await api("GET", `/conversations/${id}`);
    state.conversationId = id;
    sessionStorage.setItem("bulwark.conversation", id);
    $("messages").replaceChildren();
    for (const turn of data.turns) {
      addMessage("user", turn.user);
      addMessage("assistant", turn.assistant, answerDetails(turn));
    }
    await refreshConversations();
    setStatus("");
  } catch (error) {
    setStatus(describeError(error), true);
  }
}

async function deleteConversation(id) {
  try {
    await api("DELETE", `/conversations/${id}`);
    if (state.conversationId === id) newConversation();
    await refreshConversations();
  } catch (error) {
    setStatus(describeError(error), true);
  }
}

function newConversation() {
  state.conversationId = null;
  sessionStorage.removeItem("bulwark.conversation");
  $("messages").replaceChildren();
  setStatus("");
  refreshConversations().catch(() => {});
}

function request() {
  const body = { message: $("message").value };
  if (state.conversationId) body.conversation_id = state.conversationId;
  return body;
}

// --- streamed answers: the region's WebSocket API (ADR 0004), POST /chat when the socket fails --------------
// One socket to the region the REST failover picked (config.streamEndpoints[state.endpoint]); each message carries
// a requestId and the socket's replies are routed back by it. Text arrives as deltas and is appended to a text node.
const stream = { socket: null, url: null, token: null, opening: null, pending: new Map() };
const SOCKET_OPEN_TIMEOUT_MS = 5000;
// No answer can come after the stream Lambda's timeout (config.streamTimeoutSeconds; 120 s if absent), plus a margin
// for the last posts: past it, a request still waiting gets an error with a retry instead of waiting forever.
const STREAM_TIMEOUT_MARGIN_MS = 5000;

function streamWatchdogMs() {
  const seconds = Number(state.config.streamTimeoutSeconds) || 120;
  return seconds * 1000 + STREAM_TIMEOUT_MARGIN_MS;
}

function streamUrl() {
  const urls = state.config.streamEndpoints || [];
  return typeof WebSocket === "undefined" ? null : urls[state.endpoint] || null;
}

function openSocket() {
  const url = streamUrl();
  const token = state.session.token;
  if (!url || !token) return Promise.resolve(null);
  // A socket's identity is the token it was opened with (checked at $connect): after a new sign-in or a renewal, a
  // new socket, but only once the open one carries no answer (a renewal comes 5 minutes before the old token ends).
  const same = stream.url === url && (stream.token === token || stream.pending.size > 0);
  if (stream.socket && same && stream.socket.readyState === WebSocket.OPEN) {
    return Promise.resolve(stream.socket);
  }
  if (stream.opening && same) return stream.opening;
  if (stream.socket) stream.socket.close();
  stream.url = url;
  stream.token = token;
  stream.opening = new Promise((resolve) => {
    let socket;
    try {
      // Browsers cannot set headers on an upgrade: the ID token goes in the query string (never logged, ADR 0004).
      socket = new WebSocket(`${url}?token=${encodeURIComponent(token)}`);
    } catch (_) {
      resolve(null);
      return;
    }
    const timer = setTimeout(() => { socket.close(); resolve(null); }, SOCKET_OPEN_TIMEOUT_MS);
    socket.addEventListener("open", () => { clearTimeout(timer); stream.socket = socket; resolve(socket); });
    socket.addEventListener("error", () => { clearTimeout(timer); resolve(null); });
    socket.addEventListener("close", () => {
      clearTimeout(timer);
      resolve(null);
      if (stream.socket === socket) stream.socket = null;
      for (const pending of stream.pending.values()) pending.closed();
      stream.pending.clear();
    });
    socket.addEventListener("message", (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch (_) { return; }
      if (message.type === "budget") {  // sent after the answer's end, once its tokens are counted
        showBudget(message.budget);
        return;
      }
      const pending = stream.pending.get(message.requestId);
      if (pending) pending.receive(message);
    });
  }).finally(() => { stream.opening = null; });
  return stream.opening;
}

class StreamFallback extends Error {}  // the socket failed before the first token: POST /chat instead

function rememberConversation(id) {
  if (!id) return;
  state.conversationId = id;
  sessionStorage.setItem("bulwark.conversation", id);
}

function streamChat(body, socket) {
  const requestId = crypto.randomUUID();
  const frame = { action: "chat", message: body.message, requestId };
  if (body.conversation_id) frame.conversationId = body.conversation_id;
  return new Promise((resolve, reject) => {
    let node = null;
    let textNode = null;
    let text = "";
    let watchdog = null;
    const finish = (outcome) => { clearTimeout(watchdog); stream.pending.delete(requestId); outcome(); };
    const growing = () => {
      if (!node) {
        node = addMessage("assistant", "");
        node.classList.add("streaming");
        textNode = document.createTextNode("");
        node.append(textNode);
      }
    };
    stream.pending.set(requestId, {
      receive(message) {
        if (message.type === "start") {
          rememberConversation(message.conversationId);
          growing();
          setStatus("answering…");
        } else if (message.type === "delta") {
          growing();
          text += String(message.text || "");
          textNode.data = text;  // a text node: the model's text is never parsed as HTML
          node.scrollIntoView({ block: "end" });
        } else if (message.type === "end") {
          finish(() => resolve({ node, data: message }));
        } else if (message.type === "error") {
          const error = new ApiError(message.status, message.message, message.retryAfter || null, message.budget || null);
          // The token expired since $connect: this socket's identity is over; the next request opens a new socket
          // with a renewed token. Before the first token this question goes over POST /chat, which renews it.
          if (message.status === 401 && socket === stream.socket) socket.close();
          if (message.status === 401 && !node && state.session.refreshToken) {
            finish(() => reject(new StreamFallback("the token expired since the socket opened")));
          } else {
            if (message.status === 401) sessionEnded();
            finish(() => reject(Object.assign(error, { partial: node })));
          }
        }
      },
      closed() {
        clearTimeout(watchdog);
        // The socket dropped: before the first token, ask over POST /chat; after it, the partial text is all we have.
        if (!node) reject(new StreamFallback("the socket closed before the answer started"));
        else resolve({ node, data: { answer: text, incomplete: true, incompleteReason: "the connection was lost",
                                     retry: true } });
      },
    });
    try {
      socket.send(JSON.stringify(frame));
    } catch (_) {
      stream.pending.delete(requestId);
      reject(new StreamFallback("the socket could not send"));
      return;
    }
    // The server's time is up and the answer has not ended (its posts to this socket failed, or were lost): the text
    // so far, marked incomplete, with a retry (the server may still have stored the turn: the list shows it).
    watchdog = setTimeout(() => {
      finish(() => resolve({ node, data: { answer: text || "No answer arrived in time.", incomplete: true,
                                           incompleteReason: "no answer arrived in time", retry: true } }));
      if (socket === stream.socket) socket.close();  // a connection that lost posts: the next request opens anew
    }, streamWatchdogMs());
  });
}

function showStreamed(node, data, body) {
  rememberConversation(data.conversation_id || data.conversationId);
  const final = addMessage("assistant", data.answer || "", data.target ? answerDetails(data) : null);
  if (data.incomplete) {
    final.classList.add("incomplete");
    const marker = document.createElement("span");
    marker.className = "incomplete-note";
    marker.textContent = "incomplete — retry";
    marker.title = data.incompleteReason || "the answer stopped before its end";
    const retry = document.createElement("button");
    retry.type = "button";
    retry.className = "retry";
    retry.textContent = "retry";
    retry.addEventListener("click", () => { retry.disabled = true; ask(body); });
    final.append(marker, retry);
  }
  if (node) node.replaceWith(final);
}

async function ask(body) {
  setStatus("thinking…");
  try {
    await state.session.current();  // a renewed token opens a new socket ($connect checks the one it was opened with)
    const socket = await openSocket();
    if (socket) {
      try {
        const { node, data } = await streamChat(body, socket);
        showStreamed(node, data, body);
        setStatus("");
        await refreshConversations();
        return;
      } catch (error) {
        if (!(error instanceof StreamFallback)) throw error;
      }
    }
    const { status, data } = await api("POST", "/chat", body);
    if (status === 202) {
      setStatus(data.note || "queued as a job");
      await watchJob(data.job_id);
      return;
    }
    rememberConversation(data.conversation_id);
    addMessage("assistant", data.answer, answerDetails(data));
    showBudget(data.budget);
    setStatus("");
    await refreshConversations();
  } catch (error) {
    if (error.partial) error.partial.remove();
    showBudget(error.budget);
    setStatus(describeError(error), true);
  }
}

async function send(event) {
  event.preventDefault();
  const body = request();
  if (!body.message.trim()) return;
  addMessage("user", body.message);
  $("message").value = "";
  await ask(body);
}

async function sendJob() {
  const body = request();
  if (!body.message.trim()) return;
  addMessage("user", body.message);
  $("message").value = "";
  try {
    const { data } = await api("POST", "/jobs", body, { "Idempotency-Key": crypto.randomUUID() });
    await watchJob(data.job_id);
  } catch (error) {
    showBudget(error.budget);
    setStatus(describeError(error), true);
  }
}

async function watchJob(jobId) {
  for (;;) {
    const { data } = await api("GET", `/jobs/${jobId}`);
    setStatus(`job ${jobId.slice(0, 8)}: ${data.status}`);
    if (data.status === "done") {
      const answer = data.result;
      if (answer.conversation_id) state.conversationId = answer.conversation_id;
      addMessage("assistant", answer.answer, answerDetails(answer));
      showBudget(answer.budget);
      setStatus(`job ${jobId.slice(0, 8)} done`);
      await refreshConversations();
      return;
    }
    if (data.status === "failed") {
      setStatus(`job failed: ${data.reason}`, true);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

// --- wiring -------------------------------------------------------------------------------
function showSignedIn() {
  $("sign-in").hidden = true;
  $("app").hidden = false;
  $("sign-out").hidden = false;
  $("who").textContent = state.session.email;
  showRegion();
  state.documents.show();
  const saved = sessionStorage.getItem("bulwark.conversation");
  if (saved) openConversation(saved);
  else refreshConversations().catch((error) => setStatus(describeError(error), true));
}

// The API refused the session and nothing renews it (the refresh token expired or was revoked): back to the
// sign-in form, saying why; what the user typed stays in the composer for after they sign in.
function sessionEnded() {
  state.session.signOut();
  if (stream.socket) stream.socket.close();
  showSignIn();
  $("sign-in-error").textContent = "Your session has ended: sign in again.";
}

function showSignIn() {
  for (const id of ["new-password-form", "code-form", "totp-setup"]) $(id).hidden = true;
  $("sign-in-form").hidden = false;
  $("sign-in").hidden = false;
  $("app").hidden = true;
  $("sign-out").hidden = true;
  $("who").textContent = "";
  if (state.documents) state.documents.hide();
}

async function main() {
  await loadConfig();
  state.session = new Session({ cognito, clientId: state.config.clientId, storage: sessionStorage });
  state.documents = mountDocuments({ api, describeError, ApiError });
  $("sign-in-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("sign-in-error").textContent = "";
    try {
      await signIn($("email").value, $("password").value);
      showSignedIn();
    } catch (error) {
      showSignIn();
      $("sign-in-error").textContent = error.message;
    }
  });
  $("sign-out").addEventListener("click", () => {
    state.session.signOut();
    sessionStorage.clear();
    if (stream.socket) stream.socket.close();
    showSignIn();
  });
  $("composer").addEventListener("submit", send);
  $("send-job").addEventListener("click", sendJob);
  $("new-conversation").addEventListener("click", newConversation);
  if (state.session.restore()) showSignedIn();
  else showSignIn();
}

main().catch((error) => {
  document.body.textContent = `Bulwark could not start: ${error.message}`;
});
