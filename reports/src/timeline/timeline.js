// popsim timeline: zoom and brush on the time axis, a width that follows the window, glyphs
// restacked at every scale, click a mark to highlight its chain, filters and a message-id
// search, a detail panel. Everything it needs is in the page's markup (data-* attributes);
// it loads nothing.
//
// URL fragment (for links and tests): #select=witness (the witness mark of the earliest
// event; else a note's), #select=affected, #select=note, #select=e123 (history event 123),
// #msg=ID (search), #t=60000..70000 (zoom, ms); joined with &.
(function () {
  'use strict';
  var doc = document;
  var root = doc.documentElement;
  var $ = function (id) { return doc.getElementById(id); };
  var SVGNS = 'http://www.w3.org/2000/svg';
  var plot = $('plot');
  var head = $('head');
  var ov = $('ov');
  var T0 = +plot.getAttribute('data-t0');
  var T1 = +plot.getAttribute('data-t1');
  var LW = +plot.getAttribute('data-lw');
  var PW = +plot.getAttribute('data-pw');
  var OV_H = +ov.getAttribute('height');
  var ROW = +plot.getAttribute('data-row');
  var PAD = +plot.getAttribute('data-pad');
  var GLYPH = +plot.getAttribute('data-glyph');
  var PAD_R = 16;
  var view = { t0: T0, t1: T1 };

  var r1 = function (v) { return Math.round(v * 10) / 10; };
  var px = function (t) { return LW + (t - view.t0) * PW / Math.max(1, view.t1 - view.t0); };
  // Far off-screen coordinates are clipped anyway; keep them small.
  var clampX = function (x) { return Math.max(LW - 60, Math.min(LW + PW + 60, x)); };
  var rowY = function (r) { return PAD + ROW * (r + 0.5); };
  var byT = function (a, b) { return a.t - b.t || a.i - b.i; };

  // ---- What the markup holds.
  var bgByLane = {};
  doc.querySelectorAll('#bg > g.lb').forEach(function (g) {
    bgByLane[g.getAttribute('data-l')] = g;
  });
  var lanes = [];
  var all = [];
  var byEl = new Map();
  var count = 0;
  var mark = function (el, lane) {
    var u = el.getAttribute('data-u');
    var m = {
      el: el,
      lane: lane,
      i: count++,
      t: +el.getAttribute('data-t'),
      u: u === null ? null : +u,
      s: el.getAttribute('data-s') || 'p',
      r: +(el.getAttribute('data-r') || 0),
      e: (el.getAttribute('data-e') || '').split(' ').filter(Boolean),
      c: el.getAttribute('data-c') || '',
      cls: el.getAttribute('class') || ''
    };
    if (m.e.length) {
      all.push(m);
      byEl.set(el, m);
    }
    return m;
  };
  doc.querySelectorAll('#lanes > g.lm').forEach(function (g) {
    var bg = bgByLane[g.getAttribute('data-l')];
    var lane = {
      g: g,
      bg: bg,
      rect: bg.querySelector('rect'),
      label: bg.querySelector('text').textContent,
      kind: g.getAttribute('data-k'),
      msg: g.getAttribute('data-m') || '',
      group: g.getAttribute('data-g') || '',
      queue: g.getAttribute('data-q') || '',
      flags: g.getAttribute('data-f') || '',
      points: [], spans: [], wins: [], bars: []
    };
    g.querySelectorAll('[data-t]').forEach(function (el) {
      var m = mark(el, lane);
      ({ w: lane.wins, s: lane.spans, b: lane.bars }[m.s] || lane.points).push(m);
    });
    lane.points.sort(byT);
    lane.spans.sort(byT);
    lanes.push(lane);
  });
  var rules = [];
  doc.querySelectorAll('#rules [data-t]').forEach(function (el) { rules.push(mark(el, null)); });
  var bands = [];
  doc.querySelectorAll('#bands [data-u]').forEach(function (el) {
    bands.push({ el: el, t: +el.getAttribute('data-t'), u: +el.getAttribute('data-u') });
  });

  // ---- Filters.
  var fw = $('f-w'), fa = $('f-a'), fg = $('f-g'), fq = $('f-q'), fm = $('f-m');
  var visible = function (l) {
    if (l.kind === 'c') return true;
    if (fw.checked && l.flags.indexOf('w') < 0) return false;
    if (fa.checked && !/[wan]/.test(l.flags)) return false;
    if (fg.value && l.group !== fg.value) return false;
    if (fq.value && l.queue !== fq.value) return false;
    var q = fm.value.trim();
    if (q && l.msg.indexOf(q) < 0) return false;
    return true;
  };

  // ---- Layout: the width, every lane's rows and height, every mark's position.
  // Rows so that glyphs do not cover each other; a glyph may cover an identical one
  // (same classes) when `same` allows it. The page's static layout does the same.
  var stack = function (items, start, end, same) {
    var rows = [];
    items.forEach(function (m) {
      var a = start(m);
      var r = 0;
      while (r < rows.length && rows[r].end > a && !(same && rows[r].cls === m.cls)) r++;
      if (r === rows.length) rows.push({ end: -Infinity, cls: '' });
      rows[r] = { end: Math.max(rows[r].end, end(m)), cls: m.cls };
      m.r = r;
    });
    return rows.length;
  };
  var spanD = function (x0, x1, y) {
    x1 = Math.max(x1, x0 + 1);
    return 'M' + r1(x0) + ',' + r1(y - 5) + ' v10 M' + r1(x0) + ',' + r1(y) + ' H' + r1(x1) +
      ' M' + r1(x1) + ',' + r1(y - 3) + ' v6';
  };
  var setRect = function (el, x0, x1, y, h) {
    el.setAttribute('x', r1(x0));
    el.setAttribute('width', r1(Math.max(1, x1 - x0)));
    el.setAttribute('y', r1(y));
    el.setAttribute('height', r1(h));
  };
  var svg = function (name, attrs, text) {
    var el = doc.createElementNS(SVGNS, name);
    Object.keys(attrs).forEach(function (k) { el.setAttribute(k, attrs[k]); });
    if (text !== undefined) el.textContent = text;
    return el;
  };
  var tickStep = function (span) {
    var most = Math.max(4, Math.floor(PW / 90));
    for (var step = 1; ; step *= 10) {
      for (var k of [1, 2, 5]) {
        if (span / (step * k) <= most) return step * k;
      }
    }
  };
  var timeLabel = function (t) {
    if (t % 1000 === 0) return t / 1000 + 's';
    return (t / 1000).toFixed(3).replace(/0+$/, '') + 's';
  };
  var secs = function (t) { return (t / 1000).toFixed(3) + 's'; };

  var layout = function () {
    var avail = Math.max(640, root.clientWidth - 32);
    PW = Math.max(320, avail - LW - PAD_R);
    var W = LW + PW + PAD_R;
    var y = 0;
    lanes.forEach(function (l) {
      var shown = visible(l);
      l.g.style.display = shown ? '' : 'none';
      l.bg.style.display = shown ? '' : 'none';
      if (!shown) return;
      var pr = stack(l.points, function (m) { return px(m.t) - GLYPH / 2; },
        function (m) { return px(m.t) + GLYPH / 2; }, true);
      var sr = stack(l.spans, function (m) { return px(m.t) - 3; },
        function (m) { return Math.max(px(m.u), px(m.t) + 1) + 3; }, false);
      var h = Math.max(1, pr, sr) * ROW + 2 * PAD;
      l.points.forEach(function (m) {
        m.el.setAttribute('transform', 'translate(' + r1(clampX(px(m.t))) + ',' + r1(rowY(m.r)) + ')');
      });
      l.spans.forEach(function (m) {
        m.el.setAttribute('d', spanD(clampX(px(m.t)), clampX(px(m.u)), rowY(m.r)));
      });
      l.wins.forEach(function (m) { setRect(m.el, clampX(px(m.t)), clampX(px(m.u)), 2, h - 4); });
      l.bars.forEach(function (m) {
        var bh = Math.max(1.5, +m.el.getAttribute('data-v') * (h - 6));
        setRect(m.el, clampX(px(m.t)), clampX(px(m.u)) - 0.5, h - 3 - bh, bh);
      });
      l.g.setAttribute('transform', 'translate(0,' + r1(y) + ')');
      l.bg.setAttribute('transform', 'translate(0,' + r1(y) + ')');
      l.rect.setAttribute('width', r1(W));
      l.rect.setAttribute('height', r1(h));
      y += h;
    });
    var H = Math.max(1, y);
    plot.setAttribute('width', r1(W));
    plot.setAttribute('height', r1(H));
    head.setAttribute('width', r1(W));
    ov.setAttribute('width', r1(PW));
    $('cliprect').setAttribute('width', r1(PW));
    rules.forEach(function (m) {
      var x = r1(clampX(px(m.t)));
      m.el.setAttribute('x1', x);
      m.el.setAttribute('x2', x);
      m.el.setAttribute('y2', r1(H));
    });
    bands.forEach(function (b) { setRect(b.el, clampX(px(b.t)), clampX(px(b.u)), 0, H); });
    drawAxis(H);
    showRange();
  };

  var drawAxis = function (H) {
    var axis = $('axis');
    var grid = $('grid');
    axis.textContent = '';
    grid.textContent = '';
    var step = tickStep(view.t1 - view.t0);
    for (var t = Math.ceil(view.t0 / step) * step; t <= view.t1; t += step) {
      var x = r1(px(t));
      axis.appendChild(svg('line', { 'class': 'tick', x1: x, y1: 0, x2: x, y2: 5 }));
      axis.appendChild(svg('text', { 'class': 'axis', x: x, y: 16, 'text-anchor': 'middle' }, timeLabel(t)));
      grid.appendChild(svg('line', { 'class': 'grid', x1: x, y1: 0, x2: x, y2: r1(H) }));
    }
  };

  var showRange = function () {
    var whole = view.t0 === T0 && view.t1 === T1;
    var x0 = LW + (view.t0 - T0) * PW / Math.max(1, T1 - T0);
    var x1 = LW + (view.t1 - T0) * PW / Math.max(1, T1 - T0);
    setRect($('vr'), x0, x1, 0, OV_H);
    $('z-info').textContent = whole ? 'showing ' + secs(T0) + '..' + secs(T1)
      : 'showing ' + secs(view.t0) + '..' + secs(view.t1) + ' of ' + secs(T0) + '..' + secs(T1);
  };

  // ---- Zoom and brush.
  var zoomTo = function (a, b) {
    if (b - a < 10) {
      var c = (a + b) / 2;
      a = c - 5;
      b = c + 5;
    }
    if (a < T0) { b += T0 - a; a = T0; }
    if (b > T1) { a -= b - T1; b = T1; }
    view.t0 = Math.max(T0, Math.round(a));
    view.t1 = Math.min(T1, Math.round(b));
    if (view.t1 <= view.t0) view.t1 = view.t0 + 1;
    layout();
  };
  // Where the pointer is in time: on the overview the whole range, below it the view.
  var headAt = function (evt, overview) {
    var box = head.getBoundingClientRect();
    var x = evt.clientX - box.left;
    var inOv = overview === undefined ? evt.clientY - box.top < OV_H : overview;
    var frac = (x - LW) / PW;
    var t = inOv ? T0 + frac * (T1 - T0) : view.t0 + frac * (view.t1 - view.t0);
    return { x: x, t: t, ov: inOv };
  };
  var drag = null;
  var brush = $('brush');
  head.addEventListener('mousedown', function (e) {
    if (e.button !== 0) return;
    drag = headAt(e);
    e.preventDefault();
  });
  window.addEventListener('mousemove', function (e) {
    if (!drag) return;
    var p = headAt(e, drag.ov);
    setRect(brush, Math.min(p.x, drag.x), Math.max(p.x, drag.x), 0, +head.getAttribute('height'));
  });
  window.addEventListener('mouseup', function (e) {
    if (!drag) return;
    var d = drag;
    drag = null;
    brush.setAttribute('width', 0);
    var p = headAt(e, d.ov);
    if (Math.abs(p.x - d.x) > 3) zoomTo(Math.min(p.t, d.t), Math.max(p.t, d.t));
  });
  var wheel = function (e, overview) {
    e.preventDefault();
    var p = headAt(e, overview);
    var k = e.deltaY > 0 ? 1.25 : 0.8;
    var t = Math.max(view.t0, Math.min(view.t1, p.t));
    zoomTo(t - (t - view.t0) * k, t + (view.t1 - t) * k);
  };
  head.addEventListener('wheel', function (e) { wheel(e); }, { passive: false });
  plot.addEventListener('wheel', function (e) {
    if (e.ctrlKey || e.altKey) wheel(e, false);
  }, { passive: false });
  head.addEventListener('dblclick', function () { zoomTo(T0, T1); });
  $('z-all').addEventListener('click', function () { zoomTo(T0, T1); });
  $('z-out').addEventListener('click', function () {
    var span = view.t1 - view.t0;
    zoomTo(view.t0 - span / 2, view.t1 + span / 2);
  });

  // ---- Selection: a mark, its chain, the detail panel.
  var lit = [];
  var clear = function () {
    lit.forEach(function (m) {
      m.el.classList.remove('hl');
      if (m.lane) m.lane.rect.classList.remove('chain');
    });
    lit = [];
    root.classList.remove('sel');
    root.removeAttribute('data-sel-c');
    root.removeAttribute('data-sel-e');
    $('detail').hidden = true;
  };
  var titleOf = function (el) {
    var t = el.querySelector('title');
    return t ? t.textContent : '';
  };
  var select = function (m) {
    clear();
    if (!m) return;
    var e0 = m.e[0];
    lit = all.filter(function (x) { return (m.c && x.c === m.c) || x.e.indexOf(e0) >= 0; });
    lit.forEach(function (x) {
      x.el.classList.add('hl');
      if (x.lane) x.lane.rect.classList.add('chain');
    });
    root.classList.add('sel');
    root.setAttribute('data-sel-c', m.c);
    root.setAttribute('data-sel-e', e0);
    showDetail(m);
  };
  var reveal = function (m) {
    if (m.t < view.t0 || m.t > view.t1) {
      var half = (view.t1 - view.t0) / 2;
      zoomTo(m.t - half, m.t + half);
    }
    var target = m.lane ? m.lane.bg : plot;
    if (target.scrollIntoView) target.scrollIntoView({ block: 'center' });
  };
  var showDetail = function (m) {
    var body = $('d-body');
    body.textContent = '';
    var h2 = doc.createElement('h2');
    h2.textContent = (m.lane ? m.lane.label : 'cluster') +
      (m.c ? ': ' + lit.length + ' marks in its chain' : ': ' + lit.length + ' marks of this event');
    body.appendChild(h2);
    var ol = doc.createElement('ol');
    lit.slice().sort(function (a, b) { return a.t - b.t || a.e[0] - b.e[0] || a.i - b.i; })
      .forEach(function (x) {
        var li = doc.createElement('li');
        li.textContent = titleOf(x.el);
        if (x === m) li.className = 'cur';
        li.addEventListener('click', function () { select(x); reveal(x); });
        ol.appendChild(li);
      });
    body.appendChild(ol);
    $('detail').hidden = false;
  };
  plot.addEventListener('click', function (e) {
    var el = e.target.closest ? e.target.closest('[data-e]') : null;
    var m = el ? byEl.get(el) : null;
    if (m) select(m); else clear();
  });
  $('d-close').addEventListener('click', clear);
  doc.addEventListener('keydown', function (e) { if (e.key === 'Escape') clear(); });
  var byEvent = function (e) {
    return all.find(function (m) { return m.e[0] === e; }) ||
      all.find(function (m) { return m.e.indexOf(e) >= 0; });
  };
  doc.querySelectorAll('.ev li[data-e]').forEach(function (li) {
    li.addEventListener('click', function () {
      var m = byEvent(li.getAttribute('data-e'));
      if (m) { select(m); reveal(m); }
    });
  });
  doc.querySelectorAll('.msgref[data-m]').forEach(function (s) {
    s.addEventListener('click', function () {
      fm.value = s.getAttribute('data-m');
      layout();
      plot.scrollIntoView({ block: 'start' });
    });
  });
  [fw, fa, fg, fq].forEach(function (c) { c.addEventListener('change', layout); });
  fm.addEventListener('input', layout);
  var pendingFrame = 0;
  window.addEventListener('resize', function () {
    cancelAnimationFrame(pendingFrame);
    pendingFrame = requestAnimationFrame(layout);
  });

  // The flagged mark of the earliest event; on a tie a glyph before a window, then the
  // first in the page.
  var first = function (flag) {
    var best = null;
    var key = function (m) { return [+m.e[0], m.s === 'w' ? 1 : 0, m.i]; };
    var less = function (a, b) {
      for (var k = 0; k < a.length; k++) if (a[k] !== b[k]) return a[k] < b[k];
      return false;
    };
    all.forEach(function (m) {
      if (m.el.classList.contains(flag) && (!best || less(key(m), key(best)))) best = m;
    });
    return best;
  };
  var pick = function (v) {
    if (v === 'witness') return first('w') || first('n');
    if (v === 'affected') return first('a');
    if (v === 'note') return first('n');
    if (/^e\d+$/.test(v)) return byEvent(v.slice(1));
    return null;
  };

  // ---- Start: follow the window's width, then what the URL asks for.
  var wanted = null;
  location.hash.replace(/^#/, '').split('&').forEach(function (kv) {
    var i = kv.indexOf('=');
    if (i < 0) return;
    var k = kv.slice(0, i);
    var v = decodeURIComponent(kv.slice(i + 1));
    if (k === 'msg') fm.value = v;
    if (k === 'select') wanted = v;
    if (k === 't') {
      var ab = v.split('..');
      if (ab.length === 2 && +ab[1] > +ab[0]) {
        view.t0 = Math.max(T0, +ab[0]);
        view.t1 = Math.min(T1, +ab[1]);
      }
    }
  });
  layout();
  if (wanted) select(pick(wanted));
  root.setAttribute('data-ready', '1');
})();
