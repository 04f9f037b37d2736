// Scanning and counting with a USB scanner, our own script: the scanner types a barcode's
// digits and then Enter into the focused field. Each read is taken from the field at once (so
// the next one can follow while this one is sent), gets its own id (scan_id or line_id), and
// is sent in order; a retry after a network failure sends the same id, so it records once.
// The answer shows at once; an unknown barcode turns the result red and, if wanted, beeps.
"use strict";

(function () {
  const RETRIES = 4;

  function freshId(prefix) {
    // crypto.getRandomValues works on plain http too (randomUUID needs a secure context).
    const bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return prefix + "-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function texts() {
    const node = document.getElementById("scan-texts");
    return node ? node.dataset : {};
  }

  let audio = null;
  function beep(form) {
    const wanted = form.querySelector("[data-sound]");
    if (wanted && !wanted.checked) return;
    try {
      const Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) return;
      audio = audio || new Context();
      const oscillator = audio.createOscillator();
      const gain = audio.createGain();
      oscillator.type = "square";
      oscillator.frequency.value = 220;
      gain.gain.value = 0.08;
      oscillator.connect(gain);
      gain.connect(audio.destination);
      oscillator.start();
      oscillator.stop(audio.currentTime + 0.25);
    } catch (error) {
      // No sound here: the colour says it.
    }
  }

  function show(result, state, parts) {
    result.className = "scan-result" + (state ? " " + state : "");
    result.replaceChildren(...parts);
  }

  function span(className, text) {
    const node = document.createElement("span");
    node.className = className;
    node.textContent = text;
    return node;
  }

  function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  async function send(form, fields) {
    const body = new URLSearchParams(fields);
    for (let attempt = 0; ; attempt++) {
      try {
        const answer = await fetch(form.action, {
          method: "POST",
          body,
          credentials: "same-origin",
          headers: { Accept: "application/json" },
          cache: "no-store",
        });
        if (answer.status === 401) {
          window.location.reload(); // the session ended: the page goes to sign-in
          return null;
        }
        const type = answer.headers.get("content-type") || "";
        if (type.includes("application/json")) return await answer.json();
        if (answer.status === 403) return { ok: false, stale: true };
        if (answer.status >= 500 && attempt < RETRIES) {
          await sleep(500 * (attempt + 1));
          continue;
        }
        return { ok: false, detail: answer.status + " " + answer.statusText };
      } catch (error) {
        if (attempt >= RETRIES) return { ok: false, offline: true };
        await sleep(500 * (attempt + 1)); // the same id again: recorded once
      }
    }
  }

  function failure(form, result, answer, said) {
    if (answer.unknown) {
      show(result, "unknown", [
        span("message", (said.unknown || "{barcode}").replace("{barcode}", answer.barcode || "")),
      ]);
      beep(form);
      return;
    }
    const detail = answer.stale ? said.stale : answer.offline ? said.offline : answer.detail;
    show(result, "failed", [span("message", detail || "")]);
    beep(form);
  }

  // Keeps the barcode field focused: after each read, and when a click on the page's blank
  // parts takes the focus away (Tab still reaches every other control).
  function keepFocus(field) {
    field.addEventListener("blur", (event) => {
      if (event.relatedTarget) return;
      setTimeout(() => {
        const active = document.activeElement;
        if (!active || active === document.body) field.focus();
      }, 0);
    });
    field.focus();
  }

  function queue(handle) {
    const pending = [];
    let running = false;
    return async function push(item) {
      pending.push(item);
      if (running) return;
      running = true;
      try {
        while (pending.length) await handle(pending.shift());
      } finally {
        running = false;
      }
    };
  }

  function scanning(form) {
    const field = form.querySelector("input[name=barcode]");
    const result = document.getElementById("scan-result");
    const log = document.getElementById("scan-log");
    const csrf = form.querySelector("input[name=csrf]").value;
    const said = texts();

    function logRow(answer) {
      const row = document.createElement("tr");
      row.dataset.sku = answer.sku || "";
      if (!answer.ok) row.className = "failed";
      const cells = [
        [answer.barcode || "", ""],
        [answer.sku || (answer.unknown ? "?" : ""), ""],
        [answer.warehouse || "", ""],
        [answer.quantity || "", "num"],
        [answer.physical || "", "num"],
        [answer.available || "", "num"],
      ];
      for (const [text, className] of cells) {
        const cell = document.createElement("td");
        cell.textContent = text;
        if (className) cell.className = className;
        row.appendChild(cell);
      }
      log.prepend(row);
      while (log.children.length > 50) log.lastElementChild.remove();
    }

    const push = queue(async (fields) => {
      show(result, "", [span("message", (said.sending || "") + " " + fields.barcode)]);
      const answer = await send(form, fields);
      if (answer === null) return;
      answer.barcode = answer.barcode || fields.barcode;
      answer.warehouse = answer.warehouse || fields.warehouse;
      if (answer.ok) {
        const parts = [span("sku", answer.sku)];
        if (answer.name) parts.push(" ", span("name", answer.name));
        parts.push(" · ", span("change", answer.quantity));
        parts.push(" · " + (said.physical || "") + " ", span("balance", answer.physical));
        parts.push(" · " + (said.available || "") + " ", span("available", answer.available));
        show(result, "ok", parts);
      } else {
        failure(form, result, answer, said);
      }
      logRow(answer);
    });

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const barcode = field.value.trim();
      field.value = "";
      field.focus();
      if (!barcode) return;
      const direction = form.querySelector("input[name=direction]:checked");
      push({
        csrf,
        scan_id: freshId("ui-scan"),
        barcode,
        warehouse: form.querySelector("input[name=warehouse]").value.trim() || "main",
        direction: direction ? direction.value : "in",
      });
    });
    keepFocus(field);
  }

  function counting(form) {
    const barcode = form.querySelector("input[name=barcode]");
    const sku = form.querySelector("input[name=sku]");
    const quantity = form.querySelector("input[name=quantity]");
    const result = document.getElementById("scan-result");
    const csrf = form.querySelector("input[name=csrf]").value;
    const said = texts();

    const push = queue(async (fields) => {
      show(result, "", [span("message", (said.sending || "") + " " + (fields.barcode || fields.sku))]);
      const answer = await send(form, fields);
      if (answer === null) return;
      answer.barcode = answer.barcode || fields.barcode;
      if (answer.ok) {
        show(result, "ok", [
          span("sku", answer.sku),
          " · " + (said.counted || "") + " ",
          span("balance", answer.counted),
        ]);
      } else {
        failure(form, result, answer, said);
      }
    });

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const fields = {
        csrf,
        line_id: freshId("ui-line"),
        barcode: barcode.value.trim(),
        sku: sku.value.trim(),
        quantity: quantity.value.trim() || "1",
      };
      barcode.value = "";
      sku.value = "";
      quantity.value = "1";
      barcode.focus();
      if (!fields.barcode && !fields.sku) return;
      push(fields);
    });
    keepFocus(barcode);
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("form[data-scan]").forEach(scanning);
    document.querySelectorAll("form[data-count-line]").forEach(counting);
  });
})();
