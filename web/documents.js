// The Documents panel: upload (drag and drop or a file picker), each document's status in this region until it
// is ready or failed, and delete. An upload is two requests: POST /documents (the API checks name, type and
// size, records the document and signs an S3 POST for exactly its key), then the file itself, sent by the
// browser straight to the documents bucket as multipart/form-data: the signed fields first, the file last.

const TYPES = {  // what the API accepts, by the extension browsers may not map (Markdown is often "")
  pdf: "application/pdf", html: "text/html", htm: "text/html",
  md: "text/markdown", markdown: "text/markdown", txt: "text/plain", text: "text/plain",
};
const ALLOWED = new Set(Object.values(TYPES));
const TERMINAL = new Set(["ready", "failed", "deleted"]);
const POLL_FIRST_MS = 1000;
const POLL_MAX_MS = 15000;
const POLL_GIVE_UP_MS = 15 * 60 * 1000;  // a document still not terminal by then: stop, offer Refresh

export function contentTypeOf(file) {
  const extension = (file.name.split(".").pop() || "").toLowerCase();
  if (ALLOWED.has(file.type)) return file.type;
  return TYPES[extension] || file.type || "";
}

export function statusText(document) {
  if (document.status === "ready") {
    const chunks = document.chunk_count;
    return chunks == null ? "ready" : `ready · ${chunks} passage${chunks === 1 ? "" : "s"}`;
  }
  if (document.status === "failed") return `failed: ${document.reason || "no reason given"}`;
  if (document.status === "uploading") return "uploading…";
  if (document.status === "ingesting") return "reading and indexing…";
  return document.status;
}

// S3 answers a refused POST with XML (<Error><Code>EntityTooLarge</Code><Message>...</Message>).
async function s3Refusal(response, maxBytes) {
  const text = await response.text().catch(() => "");
  const xml = text ? new DOMParser().parseFromString(text, "application/xml") : null;
  const code = xml?.querySelector("Code")?.textContent || "";
  const message = xml?.querySelector("Message")?.textContent || response.statusText;
  if (code === "EntityTooLarge") return `the file is larger than the limit of ${formatBytes(maxBytes)}`;
  if (code === "EntityTooSmall") return "the file is empty";
  if (code === "AccessDenied" && /expired/i.test(message)) return "the upload link expired: upload it again";
  if (response.status === 503 || code === "SlowDown") return "the storage service is busy: try again in a minute";
  return `the storage service refused the file (${code || response.status}: ${message})`;
}

function formatBytes(bytes) {
  if (!bytes) return "the configured size";
  if (bytes >= 1024 * 1024) return `${Math.round(bytes / (1024 * 1024))} MB`;
  return `${Math.round(bytes / 1024)} KB`;
}

/** `api(method, path, body)` and `describeError(error)` are the page's (failover, session, 429/503 wording). */
export function mountDocuments({ api, describeError, ApiError }) {
  const $ = (id) => document.getElementById(id);
  const panel = $("documents");
  const list = $("document-list");
  const status = $("documents-status");
  const documents = new Map();  // document_id -> record as GET /documents returned it
  const uploads = new Map();    // document_id -> a local error for an upload that did not reach S3
  let timer = null;
  let delay = POLL_FIRST_MS;
  let pollingSince = 0;
  let active = false;  // signed in: a poll that returns after sign-out schedules nothing

  function say(text, isError = false, until = "") {
    status.textContent = text;
    status.classList.toggle("error", isError);
    status.dataset.until = until;
  }

  function render() {
    list.replaceChildren();
    for (const document_ of documents.values()) {
      if (document_.status === "deleted") continue;
      const item = document.createElement("li");
      item.dataset.documentId = document_.document_id;
      const failed = uploads.get(document_.document_id);
      const state = failed ? "failed" : document_.status;
      item.className = `doc ${state}`;
      const name = document.createElement("span");
      name.className = "doc-name";
      name.textContent = document_.name;
      name.title = `${document_.name} (${document_.content_type}, ${document_.size} bytes)`;
      const badge = document.createElement("span");
      badge.className = "doc-status";
      badge.textContent = failed ? `failed: ${failed}` : statusText(document_);
      const remove = document.createElement("button");
      remove.className = "delete";
      remove.title = `Delete ${document_.name}`;
      remove.setAttribute("aria-label", `Delete ${document_.name}`);
      remove.textContent = "✕";
      remove.addEventListener("click", () => removeDocument(document_.document_id));
      item.append(name, remove, badge);
      list.append(item);
    }
    $("documents-empty").hidden = list.children.length > 0;
  }

  function pending() {
    return [...documents.values()].some((d) => !TERMINAL.has(d.status) && !uploads.has(d.document_id));
  }

  // Poll while a document is on its way, 1 s then 1.5x up to 15 s; a new upload starts again at 1 s.
  function schedule(reset = false) {
    if (reset) {
      delay = POLL_FIRST_MS;
      pollingSince = Date.now();
    }
    clearTimeout(timer);
    timer = null;
    if (!active) return;
    if (!pending()) {
      if (status.dataset.until === "terminal") say("");  // "uploaded: cited once ready" has served its turn
      return;
    }
    if (Date.now() - pollingSince > POLL_GIVE_UP_MS) {
      say("Some documents are taking long: press Refresh to check them again.");
      return;
    }
    timer = setTimeout(async () => {
      timer = null;
      await refresh();
      delay = Math.min(POLL_MAX_MS, delay * 1.5);
      schedule();
    }, delay);
  }

  async function refresh() {
    try {
      const { data } = await api("GET", "/documents");
      if (!active) return false;  // signed out meanwhile: show nothing of the previous user's
      documents.clear();
      for (const record of data.documents) documents.set(record.document_id, record);
      panel.hidden = false;
      render();
      return true;
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        panel.hidden = true;  // this deployment has no knowledge configured
        return false;
      }
      say(`Documents could not be listed: ${describeError(error)}`, true);
      return false;
    }
  }

  async function upload(file) {
    const contentType = contentTypeOf(file);
    if (!ALLOWED.has(contentType)) {
      say(`${file.name} was not uploaded: only PDF, HTML, Markdown and plain text files can be added.`, true);
      return;
    }
    if (file.size === 0) {
      say(`${file.name} was not uploaded: the file is empty.`, true);
      return;
    }
    say(`Uploading ${file.name}…`);
    let created;
    try {
      ({ data: created } = await api("POST", "/documents", { name: file.name, content_type: contentType, size: file.size }));
    } catch (error) {
      say(`${file.name} was not uploaded: ${describeError(error)}`, true);
      return;
    }
    const record = created.document;
    documents.set(record.document_id, record);
    render();
    const form = new FormData();
    for (const [field, value] of Object.entries(created.upload.fields)) form.append(field, value);
    form.append("file", file);  // S3 ignores every field after the file: it must be last
    let response;
    try {
      response = await fetch(created.upload.url, { method: "POST", body: form });
    } catch (_) {
      uploads.set(record.document_id, "the file could not be sent to storage (network error)");
      say(`${file.name} was not uploaded: the storage service cannot be reached.`, true);
      render();
      return;
    }
    if (!response.ok) {
      const reason = await s3Refusal(response, created.upload.max_bytes);
      uploads.set(record.document_id, reason);
      say(`${file.name} was not uploaded: ${reason}.`, true);
      render();
      return;
    }
    say(`${file.name} uploaded: it can be cited once it is ready.`, false, "terminal");
    await refresh();
    schedule(true);
  }

  async function uploadAll(files) {
    for (const file of files) await upload(file);
  }

  async function removeDocument(id) {
    const record = documents.get(id);
    try {
      await api("DELETE", `/documents/${id}`);
      documents.delete(id);
      uploads.delete(id);
      render();
      say(record ? `${record.name} deleted.` : "Deleted.");
    } catch (error) {
      say(`${record ? record.name : "The document"} was not deleted: ${describeError(error)}`, true);
    }
  }

  const picker = $("document-file");
  picker.addEventListener("change", async () => {
    const files = [...picker.files];
    picker.value = "";
    await uploadAll(files);
  });
  const zone = $("drop-zone");
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  }
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", async (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    await uploadAll([...(event.dataTransfer?.files || [])]);
  });
  $("documents-refresh").addEventListener("click", async () => {
    say("");
    if (await refresh()) schedule(true);
  });

  return {
    async show() {
      active = true;
      if (await refresh()) schedule(true);
    },
    hide() {
      active = false;
      clearTimeout(timer);
      timer = null;
      documents.clear();
      uploads.clear();
      list.replaceChildren();
      say("");
    },
  };
}

// --- citations under an answer ------------------------------------------------------------------
/** The passages an answer was given with: "[n] name, page p" and the snippet, one item each. */
export function citationList(citations) {
  const list = document.createElement("ol");
  list.className = "citations";
  list.setAttribute("aria-label", "Sources");
  for (const citation of citations) {
    const item = document.createElement("li");
    item.value = citation.source;
    const source = document.createElement("span");
    source.className = "source";
    const where = citation.page != null ? `, page ${citation.page}` : "";
    source.textContent = `${citation.name || citation.document_id}${where}`;
    const snippet = document.createElement("q");
    snippet.className = "snippet";
    snippet.textContent = citation.snippet;
    item.append(source, snippet);
    list.append(item);
  }
  return list;
}
