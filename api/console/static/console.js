// The console's only script, our own: it keeps [data-live] parts of a page current and keeps
// a form from being sent twice by a double click (the server records once either way).
"use strict";

// A live part asks its URL for "what changed after position N" and the server answers as
// soon as something has (a long poll); between two answers it waits at least this long, so a
// busy ledger does not make an open page render more than about three times a second.
const LIVE_AT_MOST_EVERY_MS = 300;

function pause(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function followLive(element) {
  let since = element.dataset.since || "";
  for (;;) {
    if (document.hidden) {
      await pause(500);
      continue;
    }
    const started = Date.now();
    try {
      const base = element.dataset.live;
      const url = base + (base.includes("?") ? "&" : "?") + "since=" + encodeURIComponent(since);
      const answer = await fetch(url, {
        credentials: "same-origin",
        headers: { "X-Requested-With": "fetch" },
        cache: "no-store",
      });
      if (answer.status === 401) {
        window.location.reload(); // the session ended: the page goes to sign-in
        return;
      }
      since = answer.headers.get("X-Ledger-Position") || since;
      if (answer.status === 200) {
        const html = await answer.text();
        if (html.trim() !== element.innerHTML.trim()) element.innerHTML = html;
      } else if (!answer.ok) {
        await pause(2000);
      }
    } catch (error) {
      await pause(2000); // offline for a moment: try again
    }
    const spent = Date.now() - started;
    if (spent < LIVE_AT_MOST_EVERY_MS) await pause(LIVE_AT_MOST_EVERY_MS - spent);
  }
}

function sendOnce(form) {
  form.addEventListener("submit", (event) => {
    if (form.dataset.sent === "1") {
      event.preventDefault();
      return;
    }
    form.dataset.sent = "1";
    for (const button of form.querySelectorAll("button[type=submit]")) {
      button.setAttribute("aria-busy", "true");
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-live]").forEach(followLive);
  document.querySelectorAll("form[data-once]").forEach(sendOnce);
});
