// The training pages' script; without it the forms and a Refresh link do everything.
// A file dropped on the drop zone fills the file input, and an open job's page
// follows the job through /console/training/jobs/{id}/status until it ends.
"use strict";

(() => {
  const zone = document.querySelector("[data-drop-zone]");
  if (zone) {
    const form = zone.closest("form");
    const input = zone.querySelector('input[type="file"]');
    const note = document.getElementById("drop-note");
    const limit = Number(form.dataset.maxBytes) || Infinity;
    const size = (bytes) =>
      bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
    // textContent only: a file's name is text, never markup.
    const describe = () => {
      const file = input.files && input.files[0];
      const tooLarge = Boolean(file) && file.size > limit;
      zone.classList.toggle("too-large", tooLarge);
      if (!file) note.textContent = "Choose a file, or drop it here.";
      else if (tooLarge) note.textContent = `${file.name} is ${size(file.size)}: larger than the limit of ${size(limit)}.`;
      else note.textContent = `Ready to upload ${file.name} (${size(file.size)}).`;
      return !tooLarge;
    };
    for (const type of ["dragenter", "dragover"]) {
      zone.addEventListener(type, (event) => {
        event.preventDefault();
        zone.classList.add("dragging");
      });
    }
    zone.addEventListener("dragleave", (event) => {
      if (!zone.contains(event.relatedTarget)) zone.classList.remove("dragging");
    });
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("dragging");
      const files = event.dataTransfer ? event.dataTransfer.files : null;
      if (!files || files.length === 0) return;
      if (files.length > 1) {
        note.textContent = "Drop one file at a time.";
        return;
      }
      const chosen = new DataTransfer();
      chosen.items.add(files[0]);
      input.files = chosen.files;
      describe();
    });
    input.addEventListener("change", describe);
    form.addEventListener("submit", (event) => {
      if (!describe()) {
        event.preventDefault();
        input.focus();
      }
    });
  }

  const card = document.querySelector("[data-job-status-url]");
  if (card) {
    const url = card.dataset.jobStatusUrl;
    const field = (name) => document.querySelector(`[data-field="${name}"]`);
    const live = field("live");
    // Bounded: a page left open stops asking after two hours (Refresh still works).
    const until = Date.now() + 2 * 60 * 60 * 1000;
    let pause = 1000;
    const stop = (text) => {
      if (live) live.textContent = text;
    };
    // Retry-After is seconds or an HTTP date (RFC 9110 §10.2.3).
    const retryAfter = (response) => {
      const value = response.headers.get("Retry-After");
      if (!value) return null;
      const seconds = Number(value);
      if (Number.isFinite(seconds)) return Math.max(seconds, 1) * 1000;
      const at = Date.parse(value);
      return Number.isNaN(at) ? null : Math.max(at - Date.now(), 1000);
    };
    const show = (job) => {
      field("status").textContent = job.status;
      field("status").className = `job-${job.status}`;
      field("stage").textContent = job.stage || "waiting";
      field("progress").value = job.percent;
      field("progress").textContent = `${Math.round(job.percent)} %`;
      field("percent").textContent = String(Math.round(job.percent));
      field("elapsed").textContent = job.elapsed || "not started";
      const eta = field("eta");
      if (eta) eta.textContent = job.eta || "not known yet";
      field("fits").textContent = job.fits || "not counted";
      if (job.data_rows !== null) field("rows").textContent = job.data_rows.toLocaleString("en");
    };
    const poll = async () => {
      if (Date.now() > until) {
        stop("Live updates stopped after two hours; refresh to see how far the job is.");
        return;
      }
      let wait = pause;
      try {
        const response = await fetch(url, {
          headers: { Accept: "application/json" },
          credentials: "same-origin",
          cache: "no-store",
        });
        if (response.status === 429 || response.status === 503) {
          wait = retryAfter(response) ?? pause * 2;
        } else if (!response.ok) {
          stop(`Live updates stopped (the server answered ${response.status}); refresh to try again.`);
          return;
        } else {
          const job = await response.json();
          if (job.finished) {
            // The finished page has the scores or the error, and no status URL: one reload.
            window.location.reload();
            return;
          }
          show(job);
          pause = Math.min(pause * 1.25, 5000);
          wait = pause;
        }
      } catch {
        // Offline or the server restarting: back off, then try again.
        pause = Math.min(pause * 2, 30000);
        wait = pause;
      }
      window.setTimeout(poll, wait);
    };
    stop("Following the job live.");
    window.setTimeout(poll, pause);
  }

  // Tells a test (or a curious person) that the script runs on this page.
  document.documentElement.dataset.training = "on";
})();
