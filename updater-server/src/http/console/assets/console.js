// The console's only script: progressive enhancement. Every page works
// without it; with it, destructive buttons ask first, charts read out the
// focused value, and firmware uploads show their progress.
"use strict";

document.addEventListener("submit", function (e) {
  const button = e.submitter;
  const message = (button && button.dataset.confirm) || e.target.dataset.confirm;
  if (message && !window.confirm(message)) {
    e.preventDefault();
  }
});

function readOut(e) {
  const bar = e.target.closest && e.target.closest("[data-value]");
  if (!bar) return;
  const figure = bar.closest("figure");
  const out = figure && figure.querySelector(".readout");
  if (out) out.textContent = bar.getAttribute("aria-label");
}
document.addEventListener("focusin", readOut);
document.addEventListener("mouseover", readOut);

document.addEventListener("DOMContentLoaded", function () {
  const form = document.getElementById("upload");
  if (!form) return;
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    const file = form.querySelector("input[type=file]").files[0];
    if (!file) return;
    const query = new URLSearchParams();
    for (const [name, value] of new FormData(form)) {
      if (name !== "file" && name !== "csrf" && value !== "") query.append(name, value);
    }
    // A cabinet names its payload; any other file is published under its own name.
    if (!/\.cab$/i.test(file.name)) query.set("file-name", file.name);
    const progress = document.getElementById("upload-progress");
    const status = document.getElementById("upload-status");
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action + "?" + query.toString());
    xhr.setRequestHeader("X-CSRF-Token", form.querySelector("input[name=csrf]").value);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.addEventListener("progress", function (p) {
      if (p.lengthComputable) {
        progress.max = p.total;
        progress.value = p.loaded;
        status.textContent = "Uploading: " + Math.round((100 * p.loaded) / p.total) + " %";
      }
    });
    xhr.addEventListener("load", function () {
      let answer = {};
      try { answer = JSON.parse(xhr.responseText); } catch (_) { answer = {}; }
      if (xhr.status < 300) {
        window.location.assign(answer.location || "/console/catalog?done=uploaded");
      } else {
        status.textContent = "Refused: " + (answer.message || xhr.statusText);
        status.className = "error";
      }
    });
    xhr.addEventListener("error", function () {
      status.textContent = "The upload failed: the connection was closed.";
      status.className = "error";
    });
    status.textContent = "Uploading…";
    status.className = "";
    xhr.send(file);
  });
});
