// Bulwark web client: Cognito sign-in, chat, history, jobs, and regional failover.
// No framework and no build step: the runtime config (config.json) is written at deploy time
// from stack outputs (or served by the local sandbox).

const $ = (id) => document.getElementById(id);
const state = { config: null, endpoint: 0, token: null, email: null, conversationId: null };

async function loadConfig() {
  const response = await fetch("config.json", { cache: "no-store" });
  if (!response.ok) throw new Error("config.json is missing: the web stack writes it at deploy time");
  state.config = await response.json();
  state.config.apiEndpoints = state.config.apiEndpoints.map((url) => url.replace(/\/$/, ""));
}

// --- sign-in (Cognito InitiateAuth, USER_PASSWORD_AUTH over TLS) -----------------------------
async function signIn(email, password) {
  const { region, clientId, cognitoEndpoint } = state.config;
  const url = cognitoEndpoint || `https://cognito-idp.${region}.amazonaws.com/`;
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "Content-Type": "application/x-amz-json-1.1",
      "X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth",
    },
    body: JSON.stringify({ AuthFlow: "USER_PASSWORD_AUTH", ClientId: clientId,
                           AuthParameters: { USERNAME: email, PASSWORD: password } }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok || !body.AuthenticationResult) {
    throw new Error(body.message || body.__type || "sign-in failed: check the email and password");
  }
  state.token = body.AuthenticationResult.IdToken;
  state.email = email;
  sessionStorage.setItem("bulwark.session", JSON.stringify({ token: state.token, email }));
}

function restoreSession() {
  const saved = JSON.parse(sessionStorage.getItem("bulwark.session") || "null");
  if (!saved) return false;
  const payload = JSON.parse(atob(saved.token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
  if (payload.exp * 1000 <= Date.now()) return false;
  state.token = saved.token;
  state.email = saved.email;
  return true;
}

// --- API calls, with failover across the regional endpoints -----------------------------------
class ApiError extends Error {
  constructor(status, message, retryAfter) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

async function api(method, path, body, extraHeaders = {}) {
  const endpoints = state.config.apiEndpoints;
  for (let attempt = 0; attempt < endpoints.length; attempt++) {
    const base = endpoints[state.endpoint];
    let response;
    try {
      response = await fetch(base + path, {
        method,
        headers: { Authorization: state.token, "Content-Type": "application/json", ...extraHeaders },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (networkError) {
      if (await failOver()) continue;
      throw new ApiError(0, "the service cannot be reached: check your connection and try again");
    }
    if ((response.status === 502 || response.status === 504) && (await failOver())) continue;
    const text = await response.text();
    const data = text ? JSON.parse(text) : null;
    if (response.ok) return { status: response.status, data };
    throw new ApiError(response.status, (data && data.message) || response.statusText,
                       Number(response.headers.get("Retry-After")) || null);
  }
  throw new ApiError(0, "no region is answering right now; try again in a minute");
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
  if (error.status === 429) return `Too many requests.${wait}`;
  if (error.status === 503) return `${error.message}${wait}`;
  return error.message + wait;
}

// --- rendering ------------------------------------------------------------------------------
function showRegion() {
  const base = state.config.apiEndpoints[state.endpoint] || "";
  $("region").textContent = state.config.local ? "local sandbox" : base.replace(/^https:\/\/[^.]+\.execute-api\.([^.]+)\..*/, "$1");
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
  }
  $("messages").append(node);
  node.scrollIntoView({ block: "end" });
  return node;
}

function answerDetails(answer) {
  const primary = state.config.primaryTarget || null;
  const target = answer.target || {};
  const who = target.model_id === "cache" ? "a cached answer"
            : target.model_id === "none" ? "no model" : `${target.model_id} in ${target.region}`;
  const details = { meta: `answered by ${who}` };
  if (answer.usage && answer.usage.total_tokens) details.meta += ` · ${answer.usage.total_tokens} tokens`;
  if (answer.degraded) {
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

async function send(event) {
  event.preventDefault();
  const body = request();
  if (!body.message.trim()) return;
  addMessage("user", body.message);
  $("message").value = "";
  setStatus("thinking…");
  try {
    const { status, data } = await api("POST", "/chat", body);
    if (status === 202) {
      setStatus(data.note || "queued as a job");
      await watchJob(data.job_id);
      return;
    }
    if (data.conversation_id) {
      state.conversationId = data.conversation_id;
      sessionStorage.setItem("bulwark.conversation", data.conversation_id);
    }
    addMessage("assistant", data.answer, answerDetails(data));
    setStatus("");
    await refreshConversations();
  } catch (error) {
    setStatus(describeError(error), true);
  }
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
  $("who").textContent = state.email;
  showRegion();
  const saved = sessionStorage.getItem("bulwark.conversation");
  if (saved) openConversation(saved);
  else refreshConversations().catch((error) => setStatus(describeError(error), true));
}

function showSignIn() {
  $("sign-in").hidden = false;
  $("app").hidden = true;
  $("sign-out").hidden = true;
  $("who").textContent = "";
}

async function main() {
  await loadConfig();
  $("sign-in-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("sign-in-error").textContent = "";
    try {
      await signIn($("email").value, $("password").value);
      showSignedIn();
    } catch (error) {
      $("sign-in-error").textContent = error.message;
    }
  });
  $("sign-out").addEventListener("click", () => {
    sessionStorage.clear();
    state.token = null;
    showSignIn();
  });
  $("composer").addEventListener("submit", send);
  $("send-job").addEventListener("click", sendJob);
  $("new-conversation").addEventListener("click", newConversation);
  if (restoreSession()) showSignedIn();
  else showSignIn();
}

main().catch((error) => {
  document.body.textContent = `Bulwark could not start: ${error.message}`;
});
