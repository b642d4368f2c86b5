// Sapa console charts: every chart is drawn from a table already on the page, so the table is the chart's text
// alternative and the numbers a screen reader, a printout or a CSV export give are the very ones drawn.
//
//   <figure class="chart" data-chart="line|bar|stacked|hbar">
//     <figcaption>Title</figcaption>
//     <table> <thead><tr><th>Day</th><th>WhatsApp</th>...</tr></thead>
//             <tbody><tr><th>2026-12-01</th><td data-value="12">12</td>...</tr></tbody> </table>
//   </figure>
//
// The first column labels the x axis; each further column is one series. A cell's number is its data-value (or
// its text); an empty data-value is a gap. Colours are the Okabe-Ito palette (distinguishable with the common
// colour-vision deficiencies); lines also differ by dash and point shape, so colour is never the only cue.
"use strict";

const SAPA_PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];
const SAPA_DASHES = [[], [6, 4], [2, 3], [10, 3, 2, 3], [4, 4], [1, 2], [8, 2], [3, 6]];
const SAPA_POINTS = ["circle", "triangle", "rect", "rectRot", "star", "crossRot", "rectRounded", "cross"];

function sapaReadTable(table) {
  const heads = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
  const labels = [];
  const series = heads.slice(1).map((name) => ({ name, values: [] }));
  for (const row of table.querySelectorAll("tbody tr")) {
    const cells = [...row.children];
    labels.push(cells[0].textContent.trim());
    series.forEach((s, i) => {
      const cell = cells[i + 1];
      const raw = cell ? (cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent) : "";
      const number = raw === "" ? null : Number(String(raw).replace(/[^0-9.\-]/g, ""));
      s.values.push(Number.isFinite(number) ? number : null);
    });
  }
  return { labels, series };
}

function sapaDrawChart(figure) {
  if (!window.Chart || figure.dataset.drawn) return;
  const table = figure.querySelector("table");
  if (!table) return;
  const kind = figure.dataset.chart || "bar";
  const { labels, series } = sapaReadTable(table);
  if (!labels.length) return;
  const canvasBox = document.createElement("div");
  canvasBox.className = "chart-canvas";
  const canvas = document.createElement("canvas");
  const caption = figure.querySelector("figcaption");
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", (caption ? caption.textContent.trim() + ". " : "") +
    (document.documentElement.lang === "en" ? "The table below has the same numbers." : "Tabel di bawah berisi angka yang sama."));
  canvasBox.appendChild(canvas);
  figure.insertBefore(canvasBox, table.closest("details") || table);
  const line = kind === "line";
  const datasets = series.map((s, i) => ({
    label: s.name,
    data: s.values,
    borderColor: SAPA_PALETTE[i % SAPA_PALETTE.length],
    backgroundColor: SAPA_PALETTE[i % SAPA_PALETTE.length] + (line ? "" : "CC"),
    borderDash: line ? SAPA_DASHES[i % SAPA_DASHES.length] : undefined,
    pointStyle: SAPA_POINTS[i % SAPA_POINTS.length],
    pointRadius: line ? 3 : undefined,
    borderWidth: line ? 2 : 0,
    spanGaps: false,
    tension: 0,
  }));
  const stacked = kind === "stacked";
  // Counts are whole: no "2.5 messages" tick. Times and percentages keep their decimals.
  const whole = series.every((s) => s.values.every((v) => v === null || Number.isInteger(v)));
  const valueTicks = whole ? { precision: 0 } : {};
  figure.chart = new window.Chart(canvas, {
    type: line ? "line" : "bar",
    data: { labels, datasets },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      indexAxis: kind === "hbar" ? "y" : "x",
      interaction: { mode: "index", intersect: false },
      plugins: { legend: { display: series.length > 1, labels: { usePointStyle: true, boxWidth: 10 } } },
      scales: kind === "hbar"
        ? { x: { stacked, beginAtZero: true, ticks: valueTicks }, y: { stacked, ticks: { autoSkip: false } } }
        : { x: { stacked, ticks: { maxRotation: 0, autoSkip: true } }, y: { stacked, beginAtZero: true, ticks: valueTicks } },
    },
  });
  figure.dataset.drawn = "1";
}

function sapaDrawCharts(root) {
  for (const figure of (root || document).querySelectorAll("figure.chart")) sapaDrawChart(figure);
}

document.addEventListener("DOMContentLoaded", () => sapaDrawCharts(document));
