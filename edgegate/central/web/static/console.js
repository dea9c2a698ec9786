// The console's only script (CSP allows scripts from the office itself, nothing inline).
// Confirmation of dangerous actions: a form with data-confirm asks before it is sent.
document.addEventListener("submit", function (e) {
  var form = e.target;
  var msg = form.getAttribute("data-confirm");
  if (msg && !form.dataset.confirmed) {
    if (!window.confirm(msg)) { e.preventDefault(); return; }
    form.dataset.confirmed = "1";
  }
}, true);

// Charts: every <div class="chart" data-chart="ID"> is drawn by uPlot from the JSON in
// <script type="application/json" id="ID"> ({"x": [...], "series": [{"label", "values"}]}).
function drawCharts() {
  document.querySelectorAll("div[data-chart]").forEach(function (el) {
    if (el.dataset.drawn) return;
    var src = document.getElementById(el.dataset.chart);
    if (!src || typeof uPlot === "undefined") return;
    var d = JSON.parse(src.textContent);
    var colours = ["#1a56db", "#137333", "#b3261e", "#a15c00", "#6b21a8"];
    var series = [{ label: d.xlabel || "x" }];
    var data = [d.x];
    d.series.forEach(function (s, i) {
      series.push({ label: s.label, stroke: colours[i % colours.length], width: 2,
                    paths: uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.6 / d.series.length] }) : undefined,
                    fill: colours[i % colours.length] + "55" });
      data.push(s.values);
    });
    var opts = { width: Math.min(el.clientWidth || 900, 1200), height: 260, series: series,
                 scales: { x: { time: false } }, axes: [{ label: d.xlabel || "" }, {}] };
    new uPlot(opts, data, el);
    el.dataset.drawn = "1";
  });
}
document.addEventListener("DOMContentLoaded", drawCharts);
document.addEventListener("htmx:afterSwap", drawCharts);

// Bulk import: poll the job's progress endpoint while it runs.
document.addEventListener("DOMContentLoaded", function () {
  var bar = document.querySelector("progress[data-job]");
  if (!bar) return;
  var out = document.getElementById("job-status");
  function poll() {
    fetch("/people/import/" + bar.dataset.job, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (j) {
        bar.max = j.total || 1; bar.value = j.done;
        out.textContent = j.message;
        if (!j.finished) setTimeout(poll, 300);
      });
  }
  poll();
});

// Face enrolment with the browser's camera (getUserMedia: HTTPS or localhost only; the
// upload field works everywhere). "Take photo" puts a JPEG of the frame into the form's file
// field, so a camera photo is sent exactly as an uploaded one.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("enrol-face");
  if (!form || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return;
  var start = form.querySelector(".camera-start");
  var box = form.querySelector(".camera");
  var video = box.querySelector("video");
  var canvas = box.querySelector("canvas");
  var input = form.querySelector("input[type=file]");
  start.hidden = false;
  start.addEventListener("click", function () {
    navigator.mediaDevices.getUserMedia({ video: true, audio: false }).then(function (stream) {
      video.srcObject = stream;
      box.hidden = false;
    }).catch(function (err) { window.alert("No camera: " + err.message); });
  });
  box.querySelector(".camera-take").addEventListener("click", function () {
    canvas.width = video.videoWidth || 640;
    canvas.height = video.videoHeight || 480;
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    canvas.toBlob(function (blob) {
      var files = new DataTransfer();
      files.items.add(new File([blob], "camera.jpg", { type: "image/jpeg" }));
      input.files = files.files;
      video.srcObject.getTracks().forEach(function (t) { t.stop(); });
      box.hidden = true;
    }, "image/jpeg", 0.92);
  });
});
