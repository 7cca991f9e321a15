// hopsim's teaching page. Everything shown comes from the JSON hopsim embedded
// (#lesson-data): this script picks the setting, shows its result and picture,
// and plays the recorded hops. It decides nothing about TTLs or verdicts.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var data = JSON.parse(document.getElementById("lesson-data").textContent);
  var $ = function (id) { return document.getElementById(id); };
  var query = new URLSearchParams(window.location.search);
  var reduced = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  var MOVE_MS = 900, DWELL_MS = 1500;
  var REST = 46; // a packet at rest waits this far before the end of its way, off the box
  var HEADING = { ">": ["", " \u25B6"], "<": ["\u25C0 ", ""], "v": ["", " \u25BC"], "^": ["\u25B2 ", ""] };

  var state = {
    hop: data.start.hop_limit,
    tokens: data.start.http_tokens,
    follow: data.follow,
    step: -1, // the step shown; -1: the picture alone
    playing: false,
    speed: Number(query.get("speed")) || 1,
    run: 0 // bumped to cancel a running animation
  };

  var hop = $("hop"), hopValue = $("hop-value"), tokens = $("tokens"), follow = $("follow");
  var play = $("play"), speed = $("speed"), caption = $("caption");

  // -- the fixed parts --------------------------------------------------------------
  var teaches = data.teaches;
  $("teaches").textContent = teaches.indexOf("teaches ") === 0
    ? "This topology " + teaches + "." : teaches;
  $("description").textContent = data.description;
  data.principals.forEach(function (p) {
    var option = document.createElement("option");
    option.value = p.name;
    option.textContent = p.name + (p.role ? " (" + p.role + ")" : " (" + p.kind + ")");
    follow.appendChild(option);
  });
  if (Array.prototype.some.call(speed.options, function (o) { return Number(o.value) === state.speed; })) {
    speed.value = String(state.speed);
  }
  document.documentElement.dataset.ready = "false";

  function setting() { return data.settings[state.hop + "/" + state.tokens]; }
  function steps() { return (state.follow && setting().steps[state.follow]) || []; }

  // -- outcomes, verdict, picture -----------------------------------------------------
  var VERDICT = { ok: ["\u2714", "ok"], leak: ["\u2716", "leak"], broken: ["\u26A0", "broken"] };
  var HOLDS = { token: "token", credentials: "IMDSv1 credentials", none: "nothing" };

  function finding(o) {
    if (o.role === "attacker" && o.outcome !== "none") return "leak";
    if (o.role === "workload" && o.outcome !== "token") return "starved";
    return "";
  }

  function cell(row, text, className) {
    var td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function showResult() {
    var s = setting();
    hop.value = String(state.hop);
    hopValue.textContent = String(state.hop);
    hop.setAttribute("aria-valuetext", "hop limit " + state.hop);
    tokens.setAttribute("aria-checked", state.tokens === "required" ? "true" : "false");
    $("tokens-text").textContent = state.tokens;
    follow.value = state.follow || "";
    follow.disabled = !state.follow;

    var v = $("verdict");
    v.dataset.verdict = s.verdict;
    v.querySelector(".badge").textContent = VERDICT[s.verdict][0] + " verdict: " + VERDICT[s.verdict][1];
    v.querySelector(".reason").textContent = s.reason;
    v.querySelector(".recommendation").textContent = s.recommended_hop_limit
      ? "Recommended (http_tokens " + state.tokens + "): hop limit " + s.recommended_hop_limit + "."
      : "With http_tokens " + state.tokens + ": " + s.recommendation + ".";

    var body = $("outcomes").tBodies[0];
    body.textContent = "";
    s.principals.forEach(function (o) {
      var row = document.createElement("tr");
      row.dataset.principal = o.node;
      var found = finding(o);
      if (found) row.dataset.finding = found;
      if (o.node === state.follow) row.setAttribute("aria-current", "true");
      var who = cell(row, o.node + (o.replicas > 1 ? " \u00D7" + o.replicas : ""), "who");
      who.setAttribute("scope", "row");
      cell(row, o.role || "\u2014", "role");
      var holds = cell(row, "", "holds");
      var word = document.createElement("span");
      word.className = "outcome";
      word.dataset.outcome = o.outcome;
      word.textContent = o.outcome;
      holds.appendChild(word);
      if (found) {
        var mark = document.createElement("span");
        mark.className = "finding";
        mark.textContent = found === "leak" ? "\u2716 LEAK" : "\u26A0 STARVED";
        holds.appendChild(document.createTextNode(" "));
        holds.appendChild(mark);
      }
      holds.title = HOLDS[o.outcome];
      cell(row, o.reason, "reason");
      row.addEventListener("click", function () { setFollow(o.node); });
      body.appendChild(row);
    });

    var picture = $("picture");
    picture.textContent = "";
    var svg = document.importNode($(s.picture).content, true).querySelector("svg");
    svg.setAttribute("viewBox", "0 " + data.crop + " " + data.size[0] + " " + (data.size[1] - data.crop));
    svg.removeAttribute("width");
    svg.removeAttribute("height");
    svg.style.setProperty("--w", String(data.size[0]));
    picture.appendChild(svg);
    var overlay = document.createElementNS(SVG, "g");
    overlay.setAttribute("id", "overlay");
    svg.appendChild(overlay);
    document.documentElement.dataset.setting = state.hop + "/" + state.tokens;
  }

  // -- the animation ------------------------------------------------------------------
  function el(name, attrs, parent) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(node);
    return node;
  }

  function pointsText(points) {
    return points.map(function (p) { return p[0] + "," + p[1]; }).join(" ");
  }

  function packetLabel(step, ttl) {
    return ttl === null || ttl === undefined ? step.packet : step.packet + " \u00B7 TTL " + ttl;
  }

  function drawPacket(parent, at, text, kind) {
    var g = el("g", { "class": "packet " + kind, transform: "translate(" + at[0] + "," + at[1] + ")" }, parent);
    var width = 14 + text.length * 7.6;
    el("rect", { x: -width / 2, y: -12, width: width, height: 24, rx: 12 }, g);
    var t = el("text", { x: 0, y: 4.5, "text-anchor": "middle" }, g);
    t.textContent = text;
    return g;
  }

  function ring(parent, name, kind) {
    var b = data.boxes[name];
    if (!b) return;
    el("rect", { "class": "ring " + kind, x: b[0] - 5, y: b[1] - 5, width: b[2] + 10, height: b[3] + 10, rx: 8 }, parent);
  }

  function cross(parent, at) {
    var g = el("g", { "class": "cross", transform: "translate(" + at[0] + "," + at[1] + ")" }, parent);
    el("path", { d: "M-11,-11 L11,11 M-11,11 L11,-11" }, g);
    return g;
  }

  function tag(parent, at, text) {
    var g = el("g", { "class": "tag", transform: "translate(" + at[0] + "," + at[1] + ")" }, parent);
    var width = 12 + text.length * 7.4;
    el("rect", { x: -width / 2, y: -10, width: width, height: 20, rx: 5 }, g);
    var t = el("text", { x: 0, y: 4.5, "text-anchor": "middle" }, g);
    t.textContent = text;
  }

  // What step i leaves on the picture; `current`: it is the step being shown.
  function drawDone(layer, step, current, next) {
    var end = step.points ? step.points[step.points.length - 1] : step.at;
    var last = step.points ? rest(step.points) : step.at;
    switch (step.action) {
      case "request":
        el("polyline", { "class": "trail request", points: pointsText(step.points) }, layer);
        if (current) drawPacket(layer, last, step.packet, "request");
        break;
      case "sent":
        if (current) {
          ring(layer, step.node, "here");
          var out = next && next.points && next.action !== "ICMP sent" ? along(next.points, span(next.points)[0]) : step.at;
          drawPacket(layer, out, packetLabel(step, step.ttl_out), step.packet === "token" ? "token" : "answer");
        }
        break;
      case "ICMP sent":
        el("polyline", { "class": "trail icmp", points: pointsText(step.points) }, layer);
        if (current) drawPacket(layer, last, step.packet + " \u00B7 TTL " + step.ttl_out, "icmp");
        break;
      case "timed out":
        if (current) { ring(layer, step.node, "here"); drawPacket(layer, step.at, "no answer: gives up", "wait"); }
        break;
      case "outcome":
        if (current) ring(layer, step.node, "here");
        break;
      default: // bridged, forwarded, NATed, dropped, delivered
        el("polyline", { "class": "trail " + (step.packet === "token" ? "token" : "answer"), points: pointsText(step.points) }, layer);
        var arrow = HEADING[step.heading] || ["", ""];
        tag(layer, step.tag, arrow[0] + "TTL " + step.ttl_in + arrow[1]);
        if (step.action === "dropped") {
          cross(layer, end);
        } else if (current) {
          ring(layer, step.node, "here");
          var ttl = step.action === "delivered" ? step.ttl_in : step.ttl_out;
          drawPacket(layer, last, (step.action === "delivered" ? "\u2714 " : "") + packetLabel(step, ttl), step.packet === "token" ? "token" : "answer");
        }
        if (step.action === "dropped" && current) ring(layer, step.node, "drop");
    }
  }

  function overlay() { return document.getElementById("overlay"); }

  // On a narrow screen the picture scrolls sideways: keep the packet in view.
  function reveal(point) {
    var box = $("picture"), svg = box.querySelector("svg");
    if (!point || !svg || box.scrollWidth <= box.clientWidth) return;
    var scale = svg.getBoundingClientRect().width / data.size[0];
    box.scrollTo({ left: Math.max(0, point[0] * scale - box.clientWidth / 2), behavior: reduced ? "auto" : "smooth" });
  }

  function where(step, next) {
    if (!step) return null;
    if (step.action === "sent" && next && next.points) return next.points[0];
    if (step.points) return rest(step.points);
    if (step.at) return step.at;
    var b = data.boxes[step.node];
    return b ? [b[0] + b[2] / 2, b[1] + b[3] / 2] : null;
  }

  function drawUpTo(index, skipCurrent) {
    var layer = overlay();
    layer.textContent = "";
    if (index < 0) return layer;
    el("rect", { "class": "dim", x: 0, y: data.crop, width: data.size[0], height: data.size[1] - data.crop }, layer);
    var list = steps();
    for (var i = 0; i <= index && i < list.length; i++) {
      if (i === index && skipCurrent) break;
      drawDone(layer, list[i], i === index, list[i + 1]);
    }
    return layer;
  }

  function showCaption(index) {
    var list = steps();
    var count = caption.querySelector(".count"), text = caption.querySelector(".text");
    if (!state.follow) {
      count.textContent = "";
      text.textContent = "No principal in this topology: nothing to follow.";
    } else if (index < 0) {
      count.textContent = "";
      text.textContent = "Press Space (or \u25B6 Play) to follow " + state.follow + "'s token request and its answer at hop limit " + state.hop + ", hop by hop.";
    } else {
      count.textContent = "Step " + (index + 1) + " of " + list.length + ":";
      text.textContent = list[index].caption;
    }
    caption.dataset.action = index < 0 ? "" : list[index].action;
    document.documentElement.dataset.step = String(index);
  }

  function along(points, fraction) {
    var lengths = [], total = 0;
    for (var i = 1; i < points.length; i++) {
      var d = Math.hypot(points[i][0] - points[i - 1][0], points[i][1] - points[i - 1][1]);
      lengths.push(d);
      total += d;
    }
    var left = fraction * total;
    for (var j = 0; j < lengths.length; j++) {
      if (left <= lengths[j] && lengths[j] > 0) {
        var t = left / lengths[j];
        return [points[j][0] + (points[j + 1][0] - points[j][0]) * t, points[j][1] + (points[j + 1][1] - points[j][1]) * t];
      }
      left -= lengths[j];
    }
    return points[points.length - 1];
  }

  function length(points) {
    var total = 0;
    for (var i = 1; i < points.length; i++) total += Math.hypot(points[i][0] - points[i - 1][0], points[i][1] - points[i - 1][1]);
    return total;
  }

  // How far along `points` (0 to 1) a packet starts and stops: off the boxes at its ends.
  function span(points) {
    var total = length(points);
    var a = total > 3 * REST ? REST / total : 0.3;
    return [a, 1 - a];
  }

  // Where a packet that went along `points` waits: a little before the end.
  function rest(points) { return along(points, span(points)[1]); }

  // The corners of a polyline passed `fraction` of the way along it.
  function before(points, fraction) {
    var total = 0, i;
    for (i = 1; i < points.length; i++) total += Math.hypot(points[i][0] - points[i - 1][0], points[i][1] - points[i - 1][1]);
    var left = fraction * total, kept = [points[0]];
    for (i = 1; i < points.length; i++) {
      left -= Math.hypot(points[i][0] - points[i - 1][0], points[i][1] - points[i - 1][1]);
      if (left < 0) break;
      kept.push(points[i]);
    }
    return kept;
  }

  // Show step `index`: moving the packet along its path when `animate`.
  function show(index, animate, done) {
    var list = steps();
    index = Math.max(-1, Math.min(index, list.length - 1));
    state.step = index;
    showCaption(index);
    var step = list[index];
    reveal(where(step, list[index + 1]));
    var run = state.run;
    var duration = MOVE_MS / state.speed;
    if (!animate || reduced || !step || !step.points || duration < 16) {
      drawUpTo(index, false);
      if (done) done();
      return;
    }
    var layer = drawUpTo(index, true);
    var kind = step.action === "request" ? "request" : step.action === "ICMP sent" ? "icmp" : step.packet === "token" ? "token" : "answer";
    var text = step.action === "request" ? step.packet : step.action === "ICMP sent" ? step.packet + " \u00B7 TTL " + step.ttl_out : packetLabel(step, step.ttl_in);
    var trail = el("polyline", { "class": "trail " + kind, points: pointsText([step.points[0]]) }, layer);
    var packet = drawPacket(layer, along(step.points, span(step.points)[0]), text, kind);
    var started = null;
    function frame(now) {
      if (run !== state.run) return;
      if (started === null) started = now;
      var f = Math.min(1, (now - started) / duration);
      var ends = span(step.points);
      var g = ends[0] + (ends[1] - ends[0]) * f;
      var at = along(step.points, g);
      packet.setAttribute("transform", "translate(" + at[0] + "," + at[1] + ")");
      trail.setAttribute("points", pointsText(before(step.points, g).concat([at])));
      if (f < 1) {
        window.requestAnimationFrame(frame);
      } else {
        drawUpTo(index, false);
        if (done) done();
      }
    }
    window.requestAnimationFrame(frame);
  }

  function setPlaying(on) {
    state.playing = on;
    play.querySelector(".icon").textContent = on ? "\u275A\u275A" : "\u25B6";
    play.querySelector(".word").textContent = on ? "Pause" : "Play";
    play.setAttribute("aria-pressed", on ? "true" : "false");
    document.documentElement.dataset.playing = on ? "true" : "false";
  }

  function tick() {
    var run = state.run;
    var list = steps();
    if (state.step >= list.length - 1) {
      setPlaying(false);
      document.documentElement.dataset.played = state.hop + "/" + state.tokens + "/" + state.follow;
      return;
    }
    show(state.step + 1, true, function () {
      if (run !== state.run || !state.playing) return;
      window.setTimeout(function () { if (run === state.run && state.playing) tick(); },
        state.step >= steps().length - 1 ? 0 : DWELL_MS / state.speed);
    });
  }

  function togglePlay() {
    state.run++;
    if (state.playing) { setPlaying(false); show(state.step, false); return; }
    if (state.step >= steps().length - 1) state.step = -1;
    setPlaying(true);
    tick();
  }

  function stepBy(delta) {
    state.run++;
    setPlaying(false);
    show(state.step + delta, delta > 0);
  }

  function restart() {
    state.run++;
    setPlaying(false);
    show(-1, false);
  }

  // -- settings -----------------------------------------------------------------------
  function changed() {
    state.run++;
    setPlaying(false);
    state.step = -1;
    showResult();
    show(-1, false);
  }

  function setHop(value) {
    var limits = data.hop_limits;
    value = Math.max(limits[0], Math.min(limits[limits.length - 1], value));
    if (value === state.hop) return;
    state.hop = value;
    changed();
  }

  function toggleTokens() {
    state.tokens = state.tokens === "required" ? "optional" : "required";
    changed();
  }

  function setFollow(name) {
    if (name === state.follow) return;
    state.follow = name;
    changed();
  }

  function followBy(delta) {
    var names = data.principals.map(function (p) { return p.name; });
    if (!names.length) return;
    var i = names.indexOf(state.follow) + delta;
    setFollow(names[(i + names.length) % names.length]);
  }

  // -- input --------------------------------------------------------------------------
  // A mouse click leaves no focus on a button, so that Space keeps playing
  // and pausing; a keyboard press keeps it where it was.
  function clicked(handler) {
    return function (event) {
      handler();
      if (event.detail > 0 && event.currentTarget.blur) event.currentTarget.blur();
    };
  }
  hop.addEventListener("input", function () { setHop(Number(hop.value)); });
  tokens.addEventListener("click", clicked(toggleTokens));
  follow.addEventListener("change", function () { setFollow(follow.value); });
  play.addEventListener("click", clicked(togglePlay));
  $("next").addEventListener("click", clicked(function () { stepBy(1); }));
  $("back").addEventListener("click", clicked(function () { stepBy(-1); }));
  speed.addEventListener("change", function () { state.speed = Number(speed.value) || 1; });

  var SLIDER_KEYS = ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End", "PageUp", "PageDown"];
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target, tag = target.tagName;
    if (tag === "SELECT" || tag === "TEXTAREA" || (tag === "INPUT" && target !== hop)) return;
    if (target === hop && SLIDER_KEYS.indexOf(event.key) >= 0) return; // the slider's own keys
    if ((event.key === " " || event.key === "Enter") && (tag === "BUTTON" || tag === "SUMMARY" || tag === "A")) return;
    switch (event.key) {
      case "ArrowRight": setHop(state.hop + 1); break;
      case "ArrowLeft": setHop(state.hop - 1); break;
      case "ArrowUp": followBy(-1); break;
      case "ArrowDown": followBy(1); break;
      case " ": case "Spacebar": togglePlay(); break;
      case "PageDown": case "n": case "N": stepBy(1); break;
      case "PageUp": case "p": case "P": stepBy(-1); break;
      case "Home": restart(); break;
      case "End": state.run++; setPlaying(false); show(steps().length - 1, false); break;
      case "t": case "T": toggleTokens(); break;
      default: return;
    }
    event.preventDefault();
  });

  showResult();
  show(-1, false);
  setPlaying(false);
  document.documentElement.dataset.ready = "true";
})();
