// The console's few scripts: uploads with a progress bar, a job followed live, a photo replaced by
// dropping a file. Served by the console itself; nothing is loaded from anywhere else.
"use strict";
(function () {
  const csrf = () => {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  };
  const megabytes = (n) => (n < 1e6 ? Math.ceil(n / 1e3) + " kB" : (n / 1e6).toFixed(n < 1e7 ? 1 : 0) + " MB");
  const duration = (s) => {
    if (!isFinite(s) || s < 0) return "";
    if (s < 60) return Math.ceil(s) + " s";
    const m = Math.floor(s / 60);
    if (m < 60) return m + " min " + Math.round(s % 60) + " s";
    return Math.floor(m / 60) + " h " + (m % 60) + " min";
  };
  const errorOf = (xhr) => {
    try {
      const body = JSON.parse(xhr.responseText);
      if (body && body.error && body.error.message) return body.error.message;
    } catch (_) { /* not JSON */ }
    return "The server answered " + xhr.status + ".";
  };

  // Files (and folders) dropped on a zone: every file, folders walked.
  async function droppedFiles(dataTransfer) {
    const out = [];
    const walk = async (entry) => {
      if (entry.isFile) {
        out.push(await new Promise((ok, fail) => entry.file(ok, fail)));
      } else if (entry.isDirectory) {
        const reader = entry.createReader();
        for (;;) {
          const batch = await new Promise((ok, fail) => reader.readEntries(ok, fail));
          if (!batch.length) break;
          for (const e of batch) await walk(e);
        }
      }
    };
    const entries = [];
    for (const item of dataTransfer.items || []) {
      const entry = item.webkitGetAsEntry && item.webkitGetAsEntry();
      if (entry) entries.push(entry);
    }
    if (!entries.length) return Array.from(dataTransfer.files || []);
    for (const entry of entries) await walk(entry);
    return out;
  }

  function dropZone(zone, onFiles) {
    if (!zone) return;
    zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", async (e) => {
      e.preventDefault();
      zone.classList.remove("over");
      onFiles(await droppedFiles(e.dataTransfer));
    });
  }

  // --- The upload page ---
  const upload = document.getElementById("upload-form");
  if (upload) {
    let chosen = [];
    const selection = document.getElementById("selection");
    const status = document.getElementById("upload-status");
    const bar = document.getElementById("upload-progress");
    const button = document.getElementById("upload-button");
    const hidden = (f) => f.name.startsWith(".") || (f.webkitRelativePath || "").split("/").some((p) => p.startsWith(".") || p === "__MACOSX");
    const show = () => {
      const bytes = chosen.reduce((n, f) => n + f.size, 0);
      const zips = chosen.filter((f) => /\.zip$/i.test(f.name)).length;
      const csvs = chosen.filter((f) => /\.csv$/i.test(f.name)).length;
      const parts = [chosen.length + (chosen.length === 1 ? " file" : " files") + ", " + megabytes(bytes)];
      if (zips) parts.push(zips + " zip");
      if (csvs) parts.push(csvs + " mapping CSV");
      selection.textContent = chosen.length ? parts.join(" · ") : "No files chosen.";
      button.disabled = chosen.length === 0;
    };
    const add = (files) => { chosen = chosen.concat(Array.from(files).filter((f) => !hidden(f))); show(); };
    for (const id of ["files", "folder"]) {
      const input = document.getElementById(id);
      if (input) input.addEventListener("change", () => add(input.files));
    }
    document.getElementById("clear").addEventListener("click", () => {
      chosen = [];
      upload.reset();
      show();
    });
    dropZone(document.getElementById("drop"), add);
    show();
    upload.addEventListener("submit", (e) => {
      e.preventDefault();
      if (!chosen.length) return;
      if (chosen.filter((f) => /\.csv$/i.test(f.name)).length > 1) {
        status.textContent = "Choose one mapping CSV at most.";
        return;
      }
      const form = new FormData();
      for (const f of chosen) {
        if (/\.zip$/i.test(f.name)) form.append("archive", f, f.name);
        else if (/\.csv$/i.test(f.name)) form.append("mapping", f, f.name);
        else form.append("files", f, f.name);
      }
      const total = chosen.reduce((n, f) => n + f.size, 0);
      const params = new URLSearchParams();
      params.set("mode", document.getElementById("preview").checked ? "preview" : "apply");
      params.set("replace", document.getElementById("replace").value);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", upload.dataset.action + "?" + params.toString());
      xhr.setRequestHeader("X-CSRF-Token", csrf());
      const started = performance.now();
      bar.hidden = false;
      bar.max = total || 1;
      bar.value = 0;
      button.disabled = true;
      status.textContent = "Sending " + megabytes(total) + "…";
      xhr.upload.addEventListener("progress", (ev) => {
        const sent = ev.loaded;
        const all = ev.lengthComputable ? ev.total : total;
        bar.max = all || 1;
        bar.value = sent;
        const seconds = (performance.now() - started) / 1000;
        const rate = seconds > 0 ? sent / seconds : 0;
        const left = rate > 0 ? duration((all - sent) / rate) : "";
        status.textContent = megabytes(sent) + " of " + megabytes(all) + " sent (" +
          Math.floor((100 * sent) / (all || 1)) + "%)" + (left && sent < all ? " · about " + left + " left" : "");
      });
      xhr.addEventListener("load", () => {
        if (xhr.status === 202) {
          let body = {};
          try { body = JSON.parse(xhr.responseText); } catch (_) { /* shown below */ }
          if (body.job_id) {
            status.textContent = "Uploaded. Following the job…";
            window.location.assign(upload.dataset.jobs + "/" + encodeURIComponent(body.job_id));
            return;
          }
        }
        status.textContent = "Upload refused: " + errorOf(xhr);
        button.disabled = false;
      });
      xhr.addEventListener("error", () => {
        status.textContent = "The upload was interrupted; nothing was stored. Try again.";
        button.disabled = false;
      });
      xhr.send(form);
    });
  }

  // --- A job followed live (pushed by the server, never polled) ---
  const job = document.getElementById("job-live");
  if (job) {
    const final = ["finished", "finished_with_errors", "previewed", "failed"];
    const state = document.getElementById("state");
    const bar = document.getElementById("progress");
    const label = document.getElementById("progress-label");
    let done = false;
    const update = (status) => {
      if (!status || status.job_id !== job.dataset.job || done) return;
      const c = status.counts || {};
      const finished = (c.applied || 0) + (c.skipped || 0) + (c.previewed || 0) + (c.unmatched || 0) + (c.rejected || 0);
      bar.max = Math.max(c.files || 0, 1);
      bar.value = finished;
      label.textContent = finished + " of " + (c.files || 0) + " files have an outcome";
      for (const key of ["applied", "skipped", "previewed", "unmatched", "rejected"]) {
        const cell = document.getElementById("count-" + key);
        if (cell) cell.textContent = c[key] || 0;
      }
      state.textContent = status.state;
      state.className = "state-" + status.state;
      if (final.includes(status.state)) {
        done = true;
        source.close();
        // The log is rendered by the server: show it now the job has ended.
        window.location.reload();
      }
    };
    const source = new EventSource(job.dataset.events);
    source.addEventListener("job.status", (e) => {
      try { update(JSON.parse(e.data)); } catch (_) { /* a malformed event is ignored */ }
    });
    // Whatever happened between this page and the stream's start: asked once.
    source.addEventListener("open", () => {
      fetch(job.dataset.status, { credentials: "same-origin" })
        .then((r) => (r.ok ? r.json() : null))
        .then(update)
        .catch(() => {});
    });
  }

  // --- The jobs table kept current (pushed by the server, never polled) ---
  const jobsLive = document.getElementById("jobs-live");
  if (jobsLive) {
    const table = document.getElementById("jobs");
    const body = table.tBodies[0];
    const template = document.getElementById("job-row");
    const empty = document.getElementById("no-jobs");
    const announce = document.getElementById("jobs-announce");
    const limit = parseInt(jobsLive.dataset.limit, 10) || 100;
    const final = ["finished", "finished_with_errors", "previewed", "failed"];
    const rowOf = (id) => Array.from(body.rows).find((r) => r.dataset.job === id);
    const fill = (row, status) => {
      const c = status.counts || {};
      const files = c.files || 0;
      const done = (c.applied || 0) + (c.skipped || 0) + (c.previewed || 0) + (c.unmatched || 0) + (c.rejected || 0);
      const short = status.job_id.slice(0, 8);
      const cell = (k) => row.querySelector('[data-k="' + k + '"]');
      const state = cell("state");
      state.textContent = status.state;
      state.className = "state-" + status.state;
      for (const k of ["files", "applied", "unmatched", "rejected"]) cell(k).textContent = c[k] || 0;
      const bar = cell("progress");
      bar.max = Math.max(files, 1);
      bar.value = done;
      bar.textContent = done + " of " + files;
      bar.setAttribute("aria-label", "Job " + short + ": " + done + " of " + files + " files have an outcome");
      cell("started_at").textContent = status.started_at || "–";
      cell("finished_at").textContent = status.finished_at || "–";
    };
    // `pushed`: from the stream, newer than any list asked for before it arrived.
    const update = (status, pushed) => {
      if (!status || typeof status.job_id !== "string" || !status.job_id) return;
      const short = status.job_id.slice(0, 8);
      let row = rowOf(status.job_id);
      if (row && !pushed && row.dataset.pushed) return;
      if (!row) {
        row = template.content.firstElementChild.cloneNode(true);
        row.dataset.job = status.job_id;
        const link = row.querySelector('[data-k="link"]');
        link.href = link.getAttribute("href") + encodeURIComponent(status.job_id);
        link.textContent = short;
        row.classList.add("new");
        body.insertBefore(row, body.firstChild);
        while (body.rows.length > limit) body.deleteRow(body.rows.length - 1);
        table.hidden = false;
        if (empty) empty.hidden = true;
        announce.textContent = "New job " + short + ": " + status.state + ".";
      } else if (row.querySelector('[data-k="state"]').textContent !== status.state && final.includes(status.state)) {
        announce.textContent = "Job " + short + ": " + status.state + ".";
      }
      if (pushed) row.dataset.pushed = "1";
      fill(row, status);
    };
    const source = new EventSource(jobsLive.dataset.events);
    source.addEventListener("job.status", (e) => {
      try { update(JSON.parse(e.data), true); } catch (_) { /* a malformed event is ignored */ }
    });
    // Whatever happened between this page and the stream's start: asked once, oldest first so
    // new rows end up newest first.
    source.addEventListener("open", () => {
      jobsLive.dataset.connected = "true";
      fetch(jobsLive.dataset.list, { credentials: "same-origin" })
        .then((r) => (r.ok ? r.json() : null))
        .then((list) => {
          const items = (list && list.items) || [];
          for (const status of items.slice().reverse()) update(status, false);
        })
        .catch(() => {});
    });
  }

  // --- One person's photo, replaced by dropping (or choosing) a file ---
  const replace = document.getElementById("replace-photo");
  if (replace) {
    const status = document.getElementById("photo-status");
    const photo = document.getElementById("photo");
    const send = (file) => {
      if (!file) return;
      const params = new URLSearchParams({ wait: "true", file_name: file.name });
      const xhr = new XMLHttpRequest();
      xhr.open("PUT", replace.dataset.action + "?" + params.toString());
      xhr.setRequestHeader("X-CSRF-Token", csrf());
      xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
      status.textContent = "Sending " + file.name + "…";
      xhr.addEventListener("load", () => {
        let body = {};
        try { body = JSON.parse(xhr.responseText); } catch (_) { /* below */ }
        if (xhr.status === 200 && (body.outcome === "applied" || body.outcome === "replaced")) {
          photo.src = replace.dataset.photo + "?size=medium&v=" + encodeURIComponent(body.photo_id);
          photo.dataset.photoId = body.photo_id;
          status.textContent = "New photo " + body.outcome + " from " + file.name + ".";
        } else if (xhr.status === 200) {
          status.textContent = file.name + " was " + body.outcome + (body.reason ? ": " + body.reason : ".");
        } else if (xhr.status === 202) {
          status.textContent = "Still processing " + file.name + "; reload this page in a moment.";
        } else {
          status.textContent = "Refused: " + errorOf(xhr);
        }
      });
      xhr.addEventListener("error", () => { status.textContent = "The upload was interrupted; try again."; });
      xhr.send(file);
    };
    const input = document.getElementById("new-photo");
    input.addEventListener("change", () => send(input.files[0]));
    dropZone(document.getElementById("photo-drop"), (files) => send(files[0]));
  }
})();
