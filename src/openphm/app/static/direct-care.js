// The direct-care page's forms, sent with fetch so that the CSRF token travels in the X-CSRF-Token header: a
// multipart body must carry it there (the server never parses a multipart body to find a token, so the uploaded
// list stays in memory), and the API answers JSON, which is shown here rather than navigated to. A module file,
// because the Content-Security-Policy (script-src 'self') forbids inline scripts.
const token = document.querySelector('meta[name="csrf-token"]')?.getAttribute("content") ?? "";

async function send(form, body) {
  const response = await fetch(form.action, {
    method: "POST",
    body,
    headers: { "X-CSRF-Token": token, Accept: "application/json" },
    credentials: "same-origin",
  });
  const reply = await response.json().catch(() => ({ message: `the server answered ${response.status}` }));
  return { ok: response.ok, reply };
}

const request = document.getElementById("request-form");
if (request) {
  request.addEventListener("submit", async (event) => {
    event.preventDefault();
    const out = document.getElementById("request-reply");
    out.textContent = "Sending...";
    const { ok, reply } = await send(request, new FormData(request));
    if (ok) {
      out.textContent =
        `Request ${reply.id} is ${reply.status}: ${reply.submitted} numbers read, ${reply.invalid} invalid, ` +
        `${reply.matched} matched. An approver must agree before you can download the worklist.`;
      request.reset();
    } else {
      out.textContent = `Not sent: ${reply.message}`;
    }
  });
}

for (const form of document.querySelectorAll("form.app-api-form")) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const { ok, reply } = await send(form, null);
    if (ok) {
      window.location.reload();
    } else {
      document.getElementById("action-reply").textContent = `Not done: ${reply.message}`;
    }
  });
}
