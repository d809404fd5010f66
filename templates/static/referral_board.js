// Live referral board: server-sent events replace the rows when the referral log moves; the
// clocks tick here every second; a new emergency waiting for us beeps and flashes.
(function () {
  "use strict";
  var board = document.getElementById("board");
  if (!board) return;
  var csrf = board.getAttribute("data-csrf") || "";
  var status = document.getElementById("live-status");
  var banner = document.getElementById("alert-banner");
  var seen = {};
  var first = true;

  function parseUtc(s) { return s ? new Date(s.replace(" ", "T") + "Z") : null; }

  function tick() {
    var now = Date.now();
    var timers = board.querySelectorAll(".timer");
    for (var i = 0; i < timers.length; i++) {
      var t = timers[i];
      var started = parseUtc(t.getAttribute("data-started"));
      var due = parseUtc(t.getAttribute("data-due"));
      if (!started || !due) continue;
      var elapsed = Math.max(0, Math.floor((now - started.getTime()) / 1000));
      var left = Math.floor((due.getTime() - now) / 1000);
      var mm = Math.floor(elapsed / 60), ss = elapsed % 60;
      t.textContent = "已用 " + mm + ":" + (ss < 10 ? "0" : "") + ss +
        (left >= 0 ? "（剩 " + Math.ceil(left / 60) + " 分）" : "（超时 " + Math.floor(-left / 60) + " 分）");
      if (left < 0) t.classList.add("late");
    }
  }

  function beep() {
    try {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return;
      var ctx = new Ctx();
      [0, 0.35, 0.7].forEach(function (at) {
        var o = ctx.createOscillator(), g = ctx.createGain();
        o.frequency.value = 880; o.connect(g); g.connect(ctx.destination);
        g.gain.value = 0.2; o.start(ctx.currentTime + at); o.stop(ctx.currentTime + at + 0.2);
      });
    } catch (e) { /* sound is a courtesy; the banner is the alert */ }
  }

  function prepare() {
    var inputs = board.querySelectorAll("input.csrf");
    for (var i = 0; i < inputs.length; i++) inputs[i].value = csrf;
    var rows = board.querySelectorAll("tr.board-row[data-alert='1']");
    var fresh = false;
    for (var j = 0; j < rows.length; j++) {
      var id = rows[j].getAttribute("data-id");
      if (!seen[id]) { seen[id] = true; fresh = true; rows[j].classList.add("flash"); }
    }
    if (fresh) {
      banner.hidden = false;
      banner.classList.add("flash");
      beep();
    } else if (!rows.length) {
      banner.hidden = true;
    }
    first = false;
    tick();
  }

  prepare();
  setInterval(tick, 1000);
  if (!window.EventSource) { status.textContent = "浏览器不支持实时更新，请手动刷新"; return; }
  var es = new EventSource("/referrals/board/stream");
  es.addEventListener("board", function (ev) {
    board.innerHTML = ev.data;
    status.textContent = "实时 · " + new Date().toLocaleTimeString("zh-CN");
    status.setAttribute("data-updates", String(Number(status.getAttribute("data-updates") || "0") + 1));
    prepare();
  });
  // The alerts must never stop silently: when the stream ends (session over, server gone for
  // good) say so loudly and keep saying it until someone logs in again.
  var stopped = null;
  function alertsOff(why) {
    if (stopped) return;
    es.close();
    status.textContent = "实时提醒已停止";
    banner.hidden = false;
    banner.classList.add("flash");
    banner.innerHTML = "";
    var text = document.createTextNode("实时提醒已停止（" + why + "），新的紧急转诊不会再提示！ ");
    var link = document.createElement("a");
    link.href = "/login?next=/referrals/board";
    link.textContent = "重新登录";
    link.id = "relogin";
    banner.appendChild(text);
    banner.appendChild(link);
    beep();
    stopped = setInterval(beep, 30000);
  }
  es.addEventListener("expired", function () { alertsOff("登录已过期"); });
  es.onerror = function () {
    if (es.readyState === EventSource.CLOSED) { alertsOff("与服务器的连接已断开"); }
    else { status.textContent = "连接中断，正在重连…"; }
  };
  es.onopen = function () { status.textContent = "实时"; };
  void first;
})();
