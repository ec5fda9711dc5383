/*
 * Live progress bars of the jobs dashboard (communication/admin.py).
 *
 * Every bar of an active job carries its progress URL (/api/communication/<channel>/progress?jobId=)
 * and is polled about once a second with the admin session (a GET needs no CSRF token). The bar's
 * segments and every element marked data-job="<id>" data-field="<name>" follow the answer. On a
 * job's own page the page reloads once the job is final, to show the recipients' outcomes.
 */
"use strict";

(function () {
  // Once a second, slower with many running jobs: at most ~25 requests a second per page.
  const POLL_MS = 1000;
  const MS_PER_BAR = 40;
  const ACTIVE = ["queued", "running"];
  const SEGMENTS = ["completed", "failed", "unknown", "cancelled", "active"];

  // "completed_with_errors" -> "Completed with errors", as the server renders the choice.
  function label(field, value) {
    if (field !== "status") return value;
    return value.charAt(0).toUpperCase() + value.slice(1).replace(/_/g, " ");
  }

  function render(bar, data) {
    const total = data.total || 1;
    for (const name of SEGMENTS) {
      const segment = bar.querySelector(`[data-segment="${name}"]`);
      if (segment) segment.style.width = `${(data[name] / total) * 100}%`;
    }
    bar.title = SEGMENTS.concat("pending").map((name) => `${name} ${data[name]}`).join(", ");
    data.pause = pauseText(data);
    for (const element of document.querySelectorAll(`[data-job="${data.jobId}"][data-field]`)) {
      const field = element.dataset.field;
      if (data[field] !== undefined) element.textContent = label(field, data[field]);
    }
  }

  // "Channel paused until 12:30:05" while a provider's circuit breaker holds the channel.
  function pauseText(data) {
    if (!data.pausedUntil || !ACTIVE.includes(data.status)) return "";
    return `Channel paused until ${new Date(data.pausedUntil).toLocaleTimeString()}`;
  }

  // Resolves to true while the job is still active, false once it is final or unreadable.
  async function poll(bar) {
    try {
      const response = await fetch(bar.dataset.url, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!response.ok) return response.status >= 500;
      const data = await response.json();
      render(bar, data);
      return ACTIVE.includes(data.status);
    } catch (error) {
      return true; // a network hiccup: try again on the next round
    }
  }

  async function tick() {
    const bars = Array.from(document.querySelectorAll('.job-progress[data-active="true"]'));
    if (!bars.length) return;
    const active = await Promise.all(bars.map(poll));
    const finished = bars.filter((bar, index) => !active[index]);
    for (const bar of finished) bar.dataset.active = "false";
    if (finished.length && document.body.classList.contains("change-form")) {
      window.location.reload();
      return;
    }
    window.setTimeout(tick, Math.max(POLL_MS, MS_PER_BAR * bars.length));
  }

  document.addEventListener("DOMContentLoaded", () => window.setTimeout(tick, POLL_MS));
})();
