// Sapa console, marketing's pages: a live segment count, a live broadcast progress block, text counters and
// confirmations. Each page works without this file (forms submit, a reload shows the latest numbers).
"use strict";

// The segment builder: as boxes are ticked, fetch the count and sample for the form's filters (debounced).
function wireSegmentCount() {
  const form = document.getElementById("segment-form");
  if (!form) return;
  const target = document.querySelector(form.dataset.target);
  let timer = null;
  let asked = 0;
  const refresh = async () => {
    const mine = ++asked;
    const query = new URLSearchParams(new FormData(form)).toString();
    const response = await fetch(`${form.dataset.count}?${query}`, { credentials: "same-origin" });
    if (mine !== asked) return; // a newer question is on its way
    if (response.ok || response.status === 422) target.innerHTML = await response.text();
    showMini();
  };
  // On a phone the count is far below the filters: a bar stuck to the bottom of the form repeats its headline.
  const mini = document.getElementById("segment-mini");
  const showMini = () => {
    const total = target.querySelector(".seg-total");
    if (!mini) return;
    mini.hidden = !total;
    if (total) mini.textContent = total.textContent.replace(/\s+/g, " ").trim();
  };
  showMini();
  const later = () => { clearTimeout(timer); timer = setTimeout(refresh, 350); };
  form.addEventListener("change", later);
  form.addEventListener("input", later);
}

// A broadcast's progress: fetch the block every two seconds until it says it is final.
function wireProgress() {
  const box = document.querySelector("[data-live-refresh]");
  if (!box) return;
  const tick = async () => {
    if (box.querySelector("[data-final]")) return;
    const busy = box.contains(document.activeElement) && document.activeElement !== box;
    if (!busy && !document.hidden) {
      try {
        const response = await fetch(box.dataset.liveRefresh, { credentials: "same-origin" });
        const html = response.ok ? await response.text() : "";
        if (!html.includes("data-progress")) { window.location.reload(); return; } // signed out, or gone
        const before = box.querySelector("[data-status]");
        const fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-status]");
        if (before && fresh && before.dataset.status !== fresh.dataset.status) {
          window.location.replace(window.location.pathname); // the page around the block changes too (forms, badge, export links)
          return;
        }
        box.innerHTML = html;
        if (window.sapaDrawCharts) window.sapaDrawCharts(box);
      } catch (error) {
        // the server is restarting: try again at the next tick
      }
    }
    setTimeout(tick, 2000);
  };
  setTimeout(tick, 2000);
}

// Characters left in a broadcast text.
function wireCounters() {
  for (const area of document.querySelectorAll("textarea[data-counter]")) {
    const out = document.querySelector(area.dataset.counter);
    const show = () => {
      const lang = document.documentElement.lang;
      out.textContent = `${area.value.length}/${area.maxLength}` + (lang === "en" ? " characters" : " karakter");
    };
    area.addEventListener("input", show);
    show();
  }
}

// Buttons that withdraw messages ask first.
function wireConfirm() {
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-confirm]");
    if (button && !window.confirm(button.dataset.confirm)) event.preventDefault();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  wireSegmentCount();
  wireProgress();
  wireCounters();
  wireConfirm();
});
