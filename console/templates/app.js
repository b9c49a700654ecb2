// vigil console: live updates. The jobs table follows the server's event
// stream and updates its rows in place; a job's page follows its log.
"use strict";

(function jobsTable() {
  const table = document.getElementById("jobs");
  if (!table) return;
  const tab = table.dataset.tab;
  const prefixes = { backup: "bj-", restore: "rj-", copy: "cj-" };
  const fields = ["status", "validation_status", "deletion_status", "status_message", "recovery_point_id"];
  const stream = new EventSource("/events/stream?after=" + table.dataset.after);
  stream.addEventListener("vigil", (msg) => {
    const event = JSON.parse(msg.data);
    const job = event.data;
    if (!job || !job.id) return;
    // Events about other records (a recovery point's expiry) and the
    // other tabs' jobs are not rows here.
    if (!job.id.startsWith(prefixes[tab])) return;
    let row = table.querySelector(`tr[data-job="${CSS.escape(job.id)}"]`);
    if (!row) {
      // A filtered view only updates its rows: a new job may not match.
      if (table.dataset.filtered === "true") return;
      row = addRow(job);
    }
    for (const f of fields) {
      const cell = row.querySelector(`[data-field="${f}"]`);
      if (!cell || job[f] === undefined) continue;
      if (f === "recovery_point_id") { rpLink(cell, job[f]); continue; }
      cell.textContent = job[f];
      if (cell.classList.contains("status")) cell.className = "status " + job[f];
    }
    const total = row.querySelector('[data-field="total_seconds"]');
    if (total && job.total_seconds) total.textContent = job.total_seconds.toFixed(2) + "s";
    const bytes = row.querySelector('[data-field="bytes"]');
    if (bytes && job.bytes !== undefined) bytes.textContent = human(job.bytes);
    const completed = row.querySelector('[data-field="completed_at"]');
    if (completed && job.completed_at) completed.textContent = when(job.completed_at);
    const took = row.querySelector('[data-field="took"]');
    if (took && job.started_at && job.completed_at) took.textContent = "took " + duration(new Date(job.completed_at) - new Date(job.started_at));
    // A copy's recovery point exists once the job has COMPLETED.
    const copy = row.querySelector('[data-field="copy"]');
    if (copy && job.status === "COMPLETED") rpLink(copy, job.recovery_point_id);
  });

  // rpLink makes cell a link to the recovery point's page, as the
  // server's pages do.
  function rpLink(cell, id) {
    cell.textContent = "";
    if (!id) return;
    const a = document.createElement("a");
    a.href = "/recovery-points/" + encodeURIComponent(id);
    a.className = "id";
    a.textContent = id;
    cell.appendChild(a);
  }

  // duration writes milliseconds as the server's pages do: 340ms, 4.2s,
  // 12m03s, 3h10m.
  function duration(ms) {
    const p = (n) => String(Math.floor(n)).padStart(2, "0");
    if (ms < 1000) return Math.round(ms) + "ms";
    if (ms < 60e3) return Math.round(ms / 100) / 10 + "s";
    if (ms < 3600e3) return Math.floor(ms / 60e3) + "m" + p((ms / 1000) % 60) + "s";
    return Math.floor(ms / 3600e3) + "h" + p((ms / 60e3) % 60) + "m";
  }

  // when writes a time as the server's pages do: 2006-01-02 15:04:05.
  function when(t) {
    if (!t) return "–";
    const d = new Date(t);
    const p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }

  function addRow(job) {
    const row = document.createElement("tr");
    row.dataset.job = job.id;
    const cell = (text, field) => {
      const td = document.createElement("td");
      td.textContent = text || "";
      if (field) {
        td.dataset.field = field;
        if (field.endsWith("status")) td.className = "status " + (text || "");
      }
      row.appendChild(td);
      return td;
    };
    const link = document.createElement("a");
    link.href = "/jobs/" + job.id;
    link.textContent = job.id;
    const first = cell("");
    first.appendChild(link);
    if (tab === "copy") {
      first.className = "id";
      cell(job.resource);
      const status = cell("");
      const badge = document.createElement("span");
      badge.className = "status " + job.status;
      badge.dataset.field = "status";
      badge.textContent = job.status;
      const message = document.createElement("small");
      message.dataset.field = "status_message";
      message.textContent = job.status_message || "";
      status.append(badge, document.createElement("br"), message);
      cell(job.source_vault + " → " + job.vault).className = "id"; rpLink(cell(""), job.source_recovery_point_id); cell("–", "copy").className = "id";
      cell(human(job.bytes), "bytes"); cell(when(job.created_at)).className = "when";
      const ended = cell("");
      ended.className = "when";
      const at = document.createElement("span");
      at.dataset.field = "completed_at";
      at.textContent = "–";
      const took = document.createElement("small");
      took.dataset.field = "took";
      ended.append(at, document.createElement("br"), took);
    } else if (tab === "backup") {
      cell(job.resource); cell(job.vault); cell(job.status, "status"); cell(human(job.bytes), "bytes");
      rpLink(cell("", "recovery_point_id"), job.recovery_point_id); cell(when(job.created_at)); cell(job.status_message, "status_message");
    } else {
      cell(job.restore_test ? "test" : "restore"); cell(job.resource); cell(job.status, "status");
      cell(job.validation_status, "validation_status"); cell(job.deletion_status, "deletion_status");
      rpLink(cell(""), job.recovery_point_id); cell(when(job.created_at)); cell("", "total_seconds");
    }
    table.tBodies[0].prepend(row);
    return row;
  }

  function human(n) {
    if (!n) return "0 B";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + units[i];
  }
})();

(function jobLog() {
  const log = document.getElementById("log");
  if (!log || log.dataset.ended === "true") return;
  let count = Number(log.dataset.count);
  const poll = async () => {
    let body;
    try {
      const res = await fetch(`/jobs/${log.dataset.job}/log?after=${count}`, { credentials: "same-origin" });
      if (res.redirected) { location.reload(); return; } // signed out: the sign-in page
      if (!res.ok) throw new Error(res.status);
      body = await res.json();
    } catch (e) {
      setTimeout(poll, 2000); // the server may be restarting: try again
      return;
    }
    for (const l of body.lines) log.textContent += `${l.Time}  ${l.Message}\n`;
    count += body.lines.length;
    if (body.ended) {
      // The fields are final now: show them.
      location.reload();
      return;
    }
    setTimeout(poll, 500);
  };
  setTimeout(poll, 500);
})();
