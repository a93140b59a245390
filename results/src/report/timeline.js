// faultline report: the timeline of operations per process, drawn on a canvas.
// The data is packed columns (see timeline.rs); at any zoom level the cost of
// a frame is bounded by the canvas's pixels, not by the number of operations:
// when many operations share a pixel, the pixel takes the colour of the worst
// outcome among them (info over fail over ok).
(function () {
  "use strict";
  var root = document.getElementById("timeline");
  var blob = document.getElementById("timeline-data");
  if (!root || !blob) return;
  var D = JSON.parse(blob.textContent);

  function bytes(b64) {
    var bin = atob(b64), n = bin.length, out = new Uint8Array(n);
    for (var i = 0; i < n; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function u32(b64) { return new Uint32Array(bytes(b64).buffer); }
  var N = D.n;
  var START = u32(D.start), DUR = u32(D.dur), PROC = u32(D.proc), IDX = u32(D.idx), CD = u32(D.cdelta);
  var F = bytes(D.f), OUT = bytes(D.out);
  var NONE = 4294967295;
  var END = Math.max(D.end, 1);
  var laneOf = new Map();
  for (var k = 0; k < D.laneOf.length; k++) laneOf.set(D.laneOf[k][0], D.laneOf[k][1]);
  var LANES = D.laneLabels.length;
  var highlight = new Set(D.highlight);
  // Longest completed operation: how far before the view an op can start and still show.
  var maxDur = 0, open = [];
  for (var i = 0; i < N; i++) {
    if (DUR[i] === NONE) open.push(i); else if (DUR[i] > maxDur) maxDur = DUR[i];
  }

  var OUTCOME = ["ok", "fail", "info"];
  var COLOUR = ["#43a047", "#e53935", "#fb8c00"];
  var FAULT = { partition: "rgba(33,150,243,0.16)", kill: "rgba(229,57,53,0.14)", pause: "rgba(142,36,170,0.14)",
    clock: "rgba(255,179,0,0.22)", packet: "rgba(0,137,123,0.16)", file: "rgba(109,76,65,0.18)" };
  function faultColour(kind) { return FAULT[kind] || "rgba(96,125,139,0.18)"; }

  var canvas = root.querySelector("canvas");
  var detail = root.querySelector(".tl-detail");
  var status = root.querySelector(".tl-status");
  var ctx = canvas.getContext("2d");
  var LABEL_W = 90, AXIS_H = 22, NEMESIS_H = 18;
  var laneH = Math.max(2, Math.min(16, Math.floor(520 / Math.max(LANES, 1))));
  var view = { a: 0, b: END };
  var selected = -1;
  var dpr = window.devicePixelRatio || 1;

  // A time, in seconds since the start with as many decimals as `step`
  // (the distance between neighbouring labels) needs to tell them apart.
  function fmtTime(u, step) {
    if (D.clock === "logical") return "#" + Math.round(u * D.unit);
    var ns = u * D.unit, stepNs = (step || 1e6 / D.unit) * D.unit;
    var decimals = Math.min(9, Math.max(0, Math.ceil(-Math.log10(stepNs / 1e9))));
    return (ns / 1e9).toFixed(decimals) + " s";
  }
  function fmtSpan(u) {
    if (D.clock === "logical") return Math.round(u * D.unit) + " events";
    var ns = u * D.unit;
    if (ns >= 1e9) return (ns / 1e9).toFixed(3) + " s";
    if (ns >= 1e6) return (ns / 1e6).toFixed(3) + " ms";
    if (ns >= 1e3) return (ns / 1e3).toFixed(1) + " µs";
    return ns + " ns";
  }
  function niceStep(span, want) {
    var raw = span / want, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var steps = [1, 2, 5, 10];
    for (var s = 0; s < steps.length; s++) if (steps[s] * mag >= raw) return steps[s] * mag;
    return 10 * mag;
  }

  function size() {
    var w = Math.max(300, root.clientWidth);
    var h = AXIS_H + NEMESIS_H + LANES * laneH + 4;
    canvas.style.width = w + "px";
    canvas.style.height = h + "px";
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  function plotW() { return canvas.width / dpr - LABEL_W; }
  function xOf(u) { return LABEL_W + (u - view.a) / (view.b - view.a) * plotW(); }
  function uOf(x) { return view.a + (x - LABEL_W) / plotW() * (view.b - view.a); }
  function laneY(lane) { return AXIS_H + NEMESIS_H + lane * laneH; }

  // First op whose start is >= u (starts never decrease).
  function lowerBound(u) {
    var lo = 0, hi = N;
    while (lo < hi) { var m = (lo + hi) >>> 1; if (START[m] < u) lo = m + 1; else hi = m; }
    return lo;
  }
  function endOf(i) { return DUR[i] === NONE ? END : START[i] + DUR[i]; }

  var drawnOps = 0;
  function draw() {
    var W = canvas.width / dpr, H = canvas.height / dpr;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    ctx.font = "10px ui-monospace, Menlo, monospace";
    // Fault periods, shaded across every lane.
    for (var q = 0; q < D.faults.length; q++) {
      var p = D.faults[q];
      if (p[2] < view.a || p[1] > view.b) continue;
      var x0 = Math.max(LABEL_W, xOf(p[1])), x1 = Math.min(W, Math.max(xOf(p[2]), x0 + 1));
      ctx.fillStyle = faultColour(p[0]);
      ctx.fillRect(x0, AXIS_H, x1 - x0, H - AXIS_H);
      ctx.fillStyle = "#333";
      if (x1 - x0 > 40) ctx.fillText(p[0] + (p[3] ? " (not stopped)" : ""), x0 + 3, AXIS_H + 12);
    }
    for (var m = 0; m < D.marks.length; m++) {
      var mx = xOf(D.marks[m][0]);
      if (mx < LABEL_W || mx > W) continue;
      ctx.fillStyle = "#455a64";
      ctx.fillRect(mx - 1, AXIS_H + 2, 2, NEMESIS_H - 4);
    }
    // Axis.
    ctx.fillStyle = "#555";
    var span = view.b - view.a, step = niceStep(span, Math.max(2, Math.floor(plotW() / 110)));
    for (var t = Math.ceil(view.a / step) * step; t <= view.b; t += step) {
      var tx = xOf(t);
      ctx.fillRect(tx, AXIS_H - 5, 1, 5);
      ctx.fillText(fmtTime(t, step), tx + 2, AXIS_H - 8);
    }
    // Lane labels.
    ctx.fillText("nemesis", 2, AXIS_H + 12);
    if (laneH >= 9) {
      for (var l = 0; l < LANES; l++) ctx.fillText("p " + D.laneLabels[l], 2, laneY(l) + laneH - 2, LABEL_W - 4);
    } else {
      ctx.fillText(LANES + " threads", 2, AXIS_H + NEMESIS_H + 12);
    }
    // Operations: from the first that could reach into the view to the last starting in it.
    var lo = lowerBound(Math.max(0, view.a - maxDur)), hi = lowerBound(view.b + 1);
    var pw = Math.max(1, Math.floor(plotW()));
    var scale = pw / span;
    var count = hi - lo + open.length;
    drawnOps = count;
    var h = Math.max(1, laneH - 1);
    if (count > pw * 2) {
      // Level of detail: worst outcome per lane per pixel, then runs of equal pixels.
      var buf = new Uint8Array(LANES * pw);
      var mark = function (i) {
        var lane = laneOf.get(PROC[i]); if (lane === undefined) return;
        var a = Math.floor((START[i] - view.a) * scale), b = Math.floor((endOf(i) - view.a) * scale);
        if (b < 0 || a >= pw) return;
        if (a < 0) a = 0; if (b >= pw) b = pw - 1;
        var sev = OUT[i] === 0 ? 1 : OUT[i] === 1 ? 2 : 3, row = lane * pw;
        for (var x = a; x <= b; x++) if (buf[row + x] < sev) buf[row + x] = sev;
      };
      for (var i = lo; i < hi; i++) mark(i);
      for (var o = 0; o < open.length; o++) if (open[o] < lo || open[o] >= hi) mark(open[o]);
      for (var ln = 0; ln < LANES; ln++) {
        var row = ln * pw, y = laneY(ln), x = 0;
        while (x < pw) {
          var s = buf[row + x];
          var e = x + 1;
          while (e < pw && buf[row + e] === s) e++;
          if (s) { ctx.fillStyle = COLOUR[s - 1]; ctx.fillRect(LABEL_W + x, y, e - x, h); }
          x = e;
        }
      }
    } else {
      var one = function (i) {
        var lane = laneOf.get(PROC[i]); if (lane === undefined) return;
        var x0 = xOf(START[i]), x1 = xOf(endOf(i));
        if (x1 < LABEL_W || x0 > W) return;
        x0 = Math.max(LABEL_W, x0);
        ctx.fillStyle = COLOUR[OUT[i]];
        ctx.globalAlpha = DUR[i] === NONE ? 0.45 : 1;
        ctx.fillRect(x0, laneY(lane), Math.max(1.5, x1 - x0), h);
        ctx.globalAlpha = 1;
        if (x1 - x0 > 50 && laneH >= 9) {
          ctx.fillStyle = "#fff";
          ctx.fillText(D.functions[F[i]] || "?", x0 + 2, laneY(lane) + laneH - 3, x1 - x0 - 4);
        }
      };
      for (var j = lo; j < hi; j++) one(j);
      for (var o2 = 0; o2 < open.length; o2++) if (open[o2] < lo || open[o2] >= hi) one(open[o2]);
    }
    // Operations named by anomalies: outlined and flagged at any zoom.
    highlight.forEach(function (i) { outline(i, "#000", 1.5); });
    if (selected >= 0) outline(selected, "#1565c0", 2.5);
    root.dataset.drawn = String(drawnOps);
    status.textContent = N.toLocaleString() + " operations in " + LANES + " threads; showing " +
      fmtTime(view.a, span / 1000) + " – " + fmtTime(view.b, span / 1000) + " (" + count.toLocaleString() + " in view). " +
      "Wheel: zoom, drag: pan, double-click: reset, click an operation for details.";
  }
  function outline(i, colour, width) {
    var lane = laneOf.get(PROC[i]);
    if (lane === undefined) return;
    var x0 = xOf(START[i]), x1 = Math.max(xOf(endOf(i)), x0 + 2), W = canvas.width / dpr;
    if (x1 < LABEL_W || x0 > W) return;
    ctx.strokeStyle = colour;
    ctx.lineWidth = width;
    ctx.strokeRect(Math.max(LABEL_W, x0) - 1, laneY(lane) - 1, x1 - Math.max(LABEL_W, x0) + 2, laneH + 1);
    ctx.fillStyle = colour;
    ctx.beginPath();
    var cx = Math.max(LABEL_W, x0);
    ctx.moveTo(cx - 4, laneY(lane) - 6); ctx.lineTo(cx + 4, laneY(lane) - 6); ctx.lineTo(cx, laneY(lane) - 1);
    ctx.fill();
  }

  function describe(i) {
    var lines = [];
    var c = CD[i] === NONE ? "never completed" : "op " + (IDX[i] + CD[i]);
    lines.push("op " + IDX[i] + " (completion: " + c + ")");
    lines.push("process " + PROC[i] + ", " + (D.functions[F[i]] || "?") + ", " + OUTCOME[OUT[i]]);
    lines.push("invoked at " + fmtTime(START[i], 1000 / D.unit) + (DUR[i] === NONE ? ", no completion" : ", took " + fmtSpan(DUR[i])));
    var v = D.values ? D.values[i] : D.valueMap[String(i)];
    lines.push(v === undefined ? "value: not embedded (large history; see history.jsonl)" : "value: " + v);
    if (highlight.has(i)) lines.push("named by an anomaly above");
    return lines.join("\n");
  }
  function select(i) {
    selected = i;
    detail.textContent = i >= 0 ? describe(i) : "";
    draw();
  }
  function hit(px, py) {
    var lane = Math.floor((py - AXIS_H - NEMESIS_H) / laneH);
    if (lane < 0 || lane >= LANES || px < LABEL_W) return -1;
    var u = uOf(px), tol = (view.b - view.a) / plotW() * 2;
    var lo = lowerBound(Math.max(0, u - tol - maxDur)), hi = lowerBound(u + tol + 1), best = -1;
    for (var i = lo; i < hi; i++) {
      if (laneOf.get(PROC[i]) !== lane) continue;
      if (START[i] <= u + tol && endOf(i) >= u - tol) { best = i; if (OUT[i] !== 0) break; }
    }
    if (best < 0) for (var o = 0; o < open.length; o++) {
      var j = open[o];
      if (laneOf.get(PROC[j]) === lane && START[j] <= u) best = j;
    }
    return best;
  }
  function focusOn(i) {
    var e = endOf(i), pad = Math.max((e - START[i]) * 4, END / 2000, 10);
    view.a = Math.max(0, START[i] - pad);
    view.b = Math.min(END, e + pad);
    if (view.b <= view.a) view.b = view.a + 1;
    select(i);
    root.scrollIntoView({ block: "center" });
  }
  // An op index, invocation or completion, to the operation it belongs to.
  function findOp(id) {
    if (D.refs[String(id)] !== undefined) return D.refs[String(id)];
    var lo = 0, hi = N;
    while (lo < hi) { var m = (lo + hi) >>> 1; if (IDX[m] <= id) lo = m + 1; else hi = m; }
    for (var i = lo - 1; i >= 0 && i >= lo - 4096; i--) {
      if (IDX[i] === id || (CD[i] !== NONE && IDX[i] + CD[i] === id)) return i;
    }
    return -1;
  }
  function goToFault(k) {
    var p = D.faults[k], pad = Math.max((p[2] - p[1]) / 4, 10);
    view.a = Math.max(0, p[1] - pad); view.b = Math.min(END, p[2] + pad);
    detail.textContent = "fault " + p[0] + " " + p[4] + (p[3] ? " (never stopped)" : "");
    selected = -1; draw(); root.scrollIntoView({ block: "center" });
  }
  function goTo(id) {
    var i = findOp(id);
    if (i >= 0) return focusOn(i);
    if (D.nemesisRefs[String(id)] !== undefined) return goToFault(D.nemesisRefs[String(id)]);
    detail.textContent = "op " + id + " is not a client operation in this history";
  }

  // Interaction.
  var drag = null;
  canvas.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    var u = uOf(ev.offsetX), f = ev.deltaY > 0 ? 1.25 : 0.8;
    var a = u - (u - view.a) * f, b = u + (view.b - u) * f;
    view.a = Math.max(0, a); view.b = Math.min(END, Math.max(b, view.a + 1));
    draw();
  }, { passive: false });
  canvas.addEventListener("mousedown", function (ev) { drag = { x: ev.offsetX, a: view.a, b: view.b, moved: false }; });
  window.addEventListener("mouseup", function (ev) {
    if (drag && !drag.moved && ev.target === canvas) select(hit(ev.offsetX, ev.offsetY));
    drag = null;
  });
  // Hover: the op under the pointer in a tooltip, at most once per frame.
  var tip = root.querySelector(".tl-tip"), pending = null;
  canvas.addEventListener("mousemove", function (ev) {
    if (drag) return;
    if (pending === null) requestAnimationFrame(function () {
      var i = hit(pending.x, pending.y);
      if (i < 0) { tip.style.display = "none"; } else {
        tip.textContent = describe(i);
        tip.style.left = Math.min(pending.x + 14, canvas.width / dpr - 320) + "px";
        tip.style.top = (pending.y + canvas.offsetTop + 14) + "px";
        tip.style.display = "block";
      }
      pending = null;
    });
    pending = { x: ev.offsetX, y: ev.offsetY };
  });
  canvas.addEventListener("mouseleave", function () { tip.style.display = "none"; });
  canvas.addEventListener("mousemove", function (ev) {
    if (!drag) return;
    var du = (ev.offsetX - drag.x) / plotW() * (drag.b - drag.a);
    if (Math.abs(ev.offsetX - drag.x) > 2) drag.moved = true;
    var w = drag.b - drag.a;
    view.a = Math.min(Math.max(0, drag.a - du), Math.max(0, END - w));
    view.b = view.a + w;
    draw();
  });
  canvas.addEventListener("dblclick", function () { view.a = 0; view.b = END; draw(); });
  root.querySelector(".tl-in").addEventListener("click", function () {
    var c = (view.a + view.b) / 2, w = (view.b - view.a) / 4; view.a = Math.max(0, c - w); view.b = c + w; draw();
  });
  root.querySelector(".tl-out").addEventListener("click", function () {
    var c = (view.a + view.b) / 2, w = view.b - view.a; view.a = Math.max(0, c - w); view.b = Math.min(END, c + w); draw();
  });
  root.querySelector(".tl-reset").addEventListener("click", function () { view.a = 0; view.b = END; draw(); });
  root.querySelector(".tl-find").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var v = parseInt(root.querySelector(".tl-find input").value, 10);
    if (!isNaN(v)) goTo(v);
  });
  // Links to operations anywhere in the report (#op-N).
  document.addEventListener("click", function (ev) {
    var a = ev.target.closest ? ev.target.closest("a[href^='#op-']") : null;
    if (!a) return;
    ev.preventDefault();
    history.replaceState(null, "", a.getAttribute("href"));
    goTo(parseInt(a.getAttribute("href").slice(4), 10));
  });
  window.addEventListener("resize", function () { size(); draw(); });
  size();
  draw();
  if (/^#op-\d+$/.test(location.hash)) goTo(parseInt(location.hash.slice(4), 10));
  root.dataset.ready = "1";
})();
