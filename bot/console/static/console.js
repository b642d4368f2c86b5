// Sapa console: small progressive enhancements. Every page works without this file (forms post and redirect).
"use strict";

// SLA countdowns: "12 min left" / "5 min overdue", recomputed every 30 s from the deadline in data-due.
function refreshCountdowns() {
  const lang = document.documentElement.lang;
  for (const el of document.querySelectorAll("[data-due]")) {
    const minutes = Math.floor((Date.parse(el.dataset.due) - Date.now()) / 60000);
    const prefix = el.textContent.includes(":") ? el.textContent.split(":")[0] + ": " : "";
    const words = minutes >= 0
      ? (lang === "en" ? `${minutes} min left` : `${minutes} mnt lagi`)
      : (lang === "en" ? `${-minutes} min overdue` : `lewat ${-minutes} mnt`);
    el.textContent = prefix + words;
    el.classList.toggle("breached", minutes < 0);
    el.classList.toggle("soon", minutes >= 0 && minutes < 30);
  }
}

// Canned replies fill the reply box; the agent edits before sending.
function wireCanned() {
  for (const select of document.querySelectorAll("select[data-canned]")) {
    select.addEventListener("change", () => {
      const target = document.querySelector(select.dataset.canned);
      if (target && select.value) { target.value = select.value; target.focus(); }
      select.selectedIndex = 0;
    });
  }
}

// Live transcript: the server says "message" when the customer's transcript grew; fetch what is new and append.
function wireTranscript() {
  const list = document.getElementById("transcript");
  if (!list || !window.EventSource) return;
  let fetching = Promise.resolve();
  const append = () => {
    fetching = fetching.then(async () => {
      const after = list.dataset.last || "0";
      const response = await fetch(`${list.dataset.fetch}?after=${after}`, { credentials: "same-origin" });
      if (!response.ok) return;
      const html = (await response.text()).trim();
      if (!html) return;
      const nearBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 200;
      list.insertAdjacentHTML("beforeend", html);
      const items = list.querySelectorAll("li[data-id]");
      list.dataset.last = items[items.length - 1].dataset.id;
      if (nearBottom) items[items.length - 1].scrollIntoView({ block: "end" });
    });
  };
  const source = new EventSource(list.dataset.live);
  source.addEventListener("message", append);
  source.addEventListener("status", () => {
    // Someone claimed, resolved or transferred it. Reload, unless the agent is typing: then say so instead.
    const draft = document.getElementById("reply-text");
    if (!draft || !draft.value.trim()) { window.location.reload(); return; }
    const banner = document.getElementById("changed");
    if (banner) banner.hidden = false;
  });
  source.addEventListener("signed_out", () => { source.close(); window.location.reload(); });
}

// Live queue: the server says "queue" when it changed; fetch the list again with the same filters.
function wireQueue() {
  const queue = document.getElementById("queue");
  if (!queue || !window.EventSource) return;
  const source = new EventSource(queue.dataset.live);
  source.addEventListener("queue", async () => {
    const response = await fetch(queue.dataset.refresh, { credentials: "same-origin" });
    if (response.ok) { queue.innerHTML = await response.text(); refreshCountdowns(); }
  });
  source.addEventListener("signed_out", () => { source.close(); window.location.reload(); });
}

document.addEventListener("DOMContentLoaded", () => {
  refreshCountdowns();
  setInterval(refreshCountdowns, 30000);
  wireCanned();
  wireTranscript();
  wireQueue();
});
