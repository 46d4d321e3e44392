/* nsqadmin front end (nsqpy): a small single-page app without external libraries.
 *
 * It polls nsqadmin's JSON API (/api/...) and re-renders the live part of the page
 * without reloading; graphs are inline SVG drawn from nsqadmin's own history
 * (/api/history), plus graphite images when nsqadmin is started with --graphite-url.
 */
(function () {
  'use strict';

  var PREFIX = BASE_PATH === '/' ? '' : BASE_PATH;
  var HAS_LOOKUPD = NSQLOOKUPD && NSQLOOKUPD.length > 0;
  var app = document.getElementById('app');
  var banners = document.getElementById('banners');

  // ---------------------------------------------------------------------------------
  // small helpers
  // ---------------------------------------------------------------------------------
  function esc(s) {
    return String(s === undefined || s === null ? '' : s)
      .replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;').replace(/'/g, '&#39;');
  }
  var numFmt = new Intl.NumberFormat('en-US');
  function num(n) { return numFmt.format(n || 0); }
  function pathPart(s) { return encodeURIComponent(s).replace(/%3A/gi, ':'); }
  function link(path) { return PREFIX + path; }
  function topicURL(t) { return link('/topics/' + pathPart(t)); }
  function channelURL(t, c) { return link('/topics/' + pathPart(t) + '/' + pathPart(c)); }
  function nodeURL(n) { return link('/nodes/' + pathPart(n)); }
  function hostPort(node, hostname) {
    var port = String(node).split(':').pop();
    return (hostname || String(node).replace(/:\d+$/, '')) + ':' + port;
  }
  function goDuration(ns) {
    var s = Math.max(0, Math.floor(ns / 1e9));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    if (h) { return h + 'h' + m + 'm' + sec + 's'; }
    if (m) { return m + 'm' + sec + 's'; }
    return sec + 's';
  }
  function nsText(v) {
    if (v > 1e9) { return (v / 1e9).toFixed(1) + 's'; }
    if (v > 1e6) { return (v / 1e6).toFixed(1) + 'ms'; }
    if (v > 1e3) { return (v / 1e3).toFixed(1) + 'us'; }
    return (v || 0).toFixed(1) + 'ns';
  }
  function e2eCell(e2e) {
    if (!e2e || !e2e.percentiles || !e2e.percentiles.length) { return '<span class="muted">&ndash;</span>'; }
    return e2e.percentiles.map(function (p) {
      var title = 'min ' + nsText(p.min) + ', max ' + nsText(p.max) + ', average ' + nsText(p.average) + ' over ' + num(p.count) + ' messages';
      return '<span class="pct" title="' + esc(title) + '">p' + esc(+(p.quantile * 100).toFixed(2)) + ' ' + esc(nsText(p.value)) + '</span>';
    }).join(' ');
  }
  function label(text, cls, title) {
    return '<span class="label ' + (cls || '') + '"' + (title ? ' title="' + esc(title) + '"' : '') + '>' + esc(text) + '</span>';
  }
  function memDisk(o) {
    return '<span title="in memory">' + num(o.memory_depth) + '</span> + <span title="on disk">' + num(o.backend_depth) + '</span>';
  }

  // ---------------------------------------------------------------------------------
  // API
  // ---------------------------------------------------------------------------------
  function ApiError(status, message) {
    this.status = status;
    this.message = message;
  }
  ApiError.prototype.toString = function () { return this.message; };

  function api(method, path, body) {
    var ctrl = new AbortController();
    var timer = setTimeout(function () { ctrl.abort(); }, 20000);
    var init = {
      method: method,
      headers: {
        'X-UserAgent': 'nsqadmin/v' + VERSION,
        'Accept': 'application/vnd.nsq; version=1.0',
        'Content-Type': 'application/json'
      },
      signal: ctrl.signal,
      credentials: 'same-origin'
    };
    if (body !== undefined) { init.body = JSON.stringify(body); }
    return fetch(PREFIX + path, init).then(function (resp) {
      return resp.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : {}; } catch (e) { data = { message: text }; }
        if (!resp.ok) {
          throw new ApiError(resp.status, (data && data.message) || (resp.status + ' ' + resp.statusText));
        }
        return data;
      });
    }, function (err) {
      throw new ApiError(0, err && err.name === 'AbortError' ? 'request timed out' : 'nsqadmin is unreachable');
    }).finally(function () { clearTimeout(timer); });
  }

  // ---------------------------------------------------------------------------------
  // banners and the confirmation dialog
  // ---------------------------------------------------------------------------------
  var stickyBanners = {};
  function showBanner(kind, text, key, timeout) {
    var id = 'banner-' + (key || Math.random().toString(36).slice(2));
    var el = document.getElementById(id);
    if (!el) {
      el = document.createElement('div');
      el.id = id;
      banners.appendChild(el);
    }
    el.className = 'banner ' + kind;
    el.innerHTML = '<span class="banner-text">' + esc(text) + '</span><button type="button" class="banner-close" aria-label="dismiss">&times;</button>';
    if (timeout) {
      setTimeout(function () { if (el.parentNode) { el.parentNode.removeChild(el); } }, timeout);
    }
    return el;
  }
  function clearBanner(key) {
    var el = document.getElementById('banner-' + key);
    if (el && el.parentNode) { el.parentNode.removeChild(el); }
  }
  banners.addEventListener('click', function (ev) {
    if (ev.target.classList.contains('banner-close')) {
      var b = ev.target.parentNode;
      b.parentNode.removeChild(b);
    }
  });
  function apiMessage(data) {
    // partial upstream failures come back as a WARNING in the message field
    if (data && data.message) { showBanner('warning', data.message, 'api-warning'); } else { clearBanner('api-warning'); }
  }

  var modal = document.getElementById('modal');
  var pendingConfirm = null;
  function confirmDialog(title, text, buttonText) {
    document.getElementById('modal-title').textContent = title;
    document.getElementById('modal-text').textContent = text;
    document.getElementById('modal-confirm').textContent = buttonText || 'Confirm';
    modal.hidden = false;
    document.getElementById('modal-cancel').focus();
    return new Promise(function (resolve) { pendingConfirm = resolve; });
  }
  function closeModal(answer) {
    modal.hidden = true;
    var r = pendingConfirm;
    pendingConfirm = null;
    if (r) { r(answer); }
  }
  document.getElementById('modal-confirm').addEventListener('click', function () { closeModal(true); });
  document.getElementById('modal-cancel').addEventListener('click', function () { closeModal(false); });
  modal.addEventListener('click', function (ev) { if (ev.target === modal) { closeModal(false); } });
  document.addEventListener('keydown', function (ev) { if (ev.key === 'Escape' && !modal.hidden) { closeModal(false); } });

  // ---------------------------------------------------------------------------------
  // graphs: inline SVG from nsqadmin's own history
  // ---------------------------------------------------------------------------------
  var COLORS = ['#2f6fdb', '#e07b18', '#1b9e5a', '#c23b6f', '#7a52c7', '#b8860b', '#0e8a9c', '#6b6b6b'];

  function rates(points, idx) {
    var out = [];
    for (var i = 1; i < points.length; i++) {
      var dt = points[i][0] - points[i - 1][0];
      var dv = points[i][idx] - points[i - 1][idx];
      if (dt > 0 && dv >= 0) { out.push([points[i][0], dv / dt]); }
    }
    return out;
  }
  function column(points, idx) {
    return points.map(function (p) { return [p[0], p[idx]]; });
  }
  function niceMax(v) {
    if (v <= 0) { return 1; }
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) { if (steps[i] * p >= v) { return steps[i] * p; } }
    return 10 * p;
  }
  function shortNum(v) {
    if (v >= 1e9) { return +(v / 1e9).toFixed(1) + 'G'; }
    if (v >= 1e6) { return +(v / 1e6).toFixed(1) + 'M'; }
    if (v >= 1e3) { return +(v / 1e3).toFixed(1) + 'k'; }
    if (v > 0 && v < 10) { return +v.toFixed(2) + ''; }
    if (v < 100) { return +v.toFixed(1) + ''; }
    return Math.round(v) + '';
  }

  // the time span to draw: the whole window once nsqadmin has sampled that long,
  // else just what it has (at least a minute) so a young history is readable
  function span(seriesPoints, now, win) {
    var oldest = now;
    seriesPoints.forEach(function (pts) { if (pts.length && pts[0][0] < oldest) { oldest = pts[0][0]; } });
    return Math.min(win, Math.max(60, now - oldest));
  }
  function ago(sec) {
    if (sec >= 3600) { return '-' + +(sec / 3600).toFixed(1) + 'h'; }
    if (sec >= 120) { return '-' + Math.round(sec / 60) + 'm'; }
    return '-' + Math.round(sec) + 's';
  }

  // chart({title, series: [{name, points: [[ts, v]]}], unit, now, window})
  function chart(opts) {
    var W = 560, H = 150, L = 44, R = 10, T = 10, B = 22;
    var now = opts.now;
    var win = span(opts.series.map(function (s) { return s.points; }), now, opts.window);
    var t0 = now - win;
    var max = 0;
    opts.series.forEach(function (s) { s.points.forEach(function (p) { if (p[0] >= t0 && p[1] > max) { max = p[1]; } }); });
    max = niceMax(max);
    function x(t) { return L + (W - L - R) * (t - t0) / win; }
    function y(v) { return T + (H - T - B) * (1 - v / max); }
    var svg = '<svg class="chart" viewBox="0 0 ' + W + ' ' + H + '" preserveAspectRatio="none" role="img" aria-label="' + esc(opts.title) + '">';
    for (var g = 0; g <= 4; g++) {
      var gy = T + (H - T - B) * g / 4;
      svg += '<line class="grid" x1="' + L + '" x2="' + (W - R) + '" y1="' + gy + '" y2="' + gy + '"/>';
      svg += '<text class="axis" x="' + (L - 4) + '" y="' + (gy + 4) + '" text-anchor="end">' + esc(shortNum(max * (1 - g / 4))) + '</text>';
    }
    [0, 0.5, 1].forEach(function (f) {
      var lbl = f === 1 ? 'now' : ago(win * (1 - f));
      svg += '<text class="axis" x="' + (L + (W - L - R) * f) + '" y="' + (H - 6) + '" text-anchor="' + (f === 0 ? 'start' : f === 1 ? 'end' : 'middle') + '">' + lbl + '</text>';
    });
    var any = false;
    opts.series.forEach(function (s, i) {
      var pts = s.points.filter(function (p) { return p[0] >= t0; });
      if (!pts.length) { return; }
      any = true;
      var color = COLORS[i % COLORS.length];
      var d = pts.map(function (p) { return x(p[0]).toFixed(1) + ',' + y(p[1]).toFixed(1); }).join(' ');
      if (pts.length === 1) {
        svg += '<circle cx="' + x(pts[0][0]).toFixed(1) + '" cy="' + y(pts[0][1]).toFixed(1) + '" r="2.5" fill="' + color + '"/>';
      } else {
        svg += '<polyline class="line" points="' + d + '" stroke="' + color + '"/>';
      }
    });
    if (!any) {
      svg += '<text class="axis empty" x="' + (W / 2) + '" y="' + (H / 2) + '" text-anchor="middle">collecting samples&hellip;</text>';
    }
    svg += '</svg>';
    var legend = opts.series.map(function (s, i) {
      var last = s.points.length ? s.points[s.points.length - 1][1] : null;
      return '<span class="legend-item"><i style="background:' + COLORS[i % COLORS.length] + '"></i>' + esc(s.name) +
        (last === null ? '' : ' <b>' + esc(shortNum(last)) + (opts.unit ? (opts.unit.charAt(0) === '/' ? '' : ' ') + esc(opts.unit) : '') + '</b>') + '</span>';
    }).join('');
    return '<figure class="chart-box" data-chart="' + esc(opts.id || opts.title) + '"><figcaption>' + esc(opts.title) + '</figcaption>' + svg + '<div class="legend">' + legend + '</div></figure>';
  }

  function sparkline(points, now, win) {
    var W = 120, H = 22;
    win = span([points], now, win);
    var t0 = now - win;
    var pts = points.filter(function (p) { return p[0] >= t0; });
    if (pts.length < 2) { return '<svg class="spark" viewBox="0 0 ' + W + ' ' + H + '"></svg>'; }
    var max = 0;
    pts.forEach(function (p) { if (p[1] > max) { max = p[1]; } });
    max = max || 1;
    var d = pts.map(function (p) {
      return (W * (p[0] - t0) / win).toFixed(1) + ',' + (H - 2 - (H - 4) * p[1] / max).toFixed(1);
    }).join(' ');
    return '<svg class="spark" viewBox="0 0 ' + W + ' ' + H + '" preserveAspectRatio="none"><polyline points="' + d + '"/></svg>';
  }

  // ---------------------------------------------------------------------------------
  // graphite (only with --graphite-url)
  // ---------------------------------------------------------------------------------
  var GAUGES = /^(depth|in_flight_count|deferred_count|clients|.*_bytes|gc_pause_.*|heap_objects|e2e_processing_latency.*)$/;
  function graphInterval() {
    var m = /[?&]t=([^&]+)/.exec(location.search);
    if (m) { return decodeURIComponent(m[1]); }
    return localStorage.getItem('nsqadmin_graph_interval') || '2h';
  }
  function statsdPrefix(node) {
    var host = node === '*' ? '*' : String(node).replace(/[.:]/g, '_');
    var p = STATSD_PREFIX.replace('%s', host);
    if (p && p.charAt(p.length - 1) !== '.') { p += '.'; }
    return p;
  }
  function sanitize(name) {
    return String(name).replace(/ /g, '_').replace(/\//g, '-').replace(/[^a-zA-Z0-9\-_.]/g, '');
  }
  function metric(key, full) {
    var fmt = GAUGES.test(key) ? STATSD_GAUGE_FORMAT : STATSD_COUNTER_FORMAT;
    return fmt ? fmt.replace('%s', full) : full;
  }
  function graphiteTarget(topic, channel, key, node) {
    var k = statsdPrefix(node || '*') + 'topic.' + sanitize(topic) + '.' + (channel ? 'channel.' + sanitize(channel) + '.' : '') + key;
    return 'sumSeries(' + metric(key, k) + ')';
  }
  function graphiteImg(target, w, h) {
    var iv = graphInterval();
    if (!GRAPH_ENABLED || iv === 'off') { return ''; }
    var base = PROXY_GRAPHITE ? PREFIX : GRAPHITE_URL;
    var q = 'target=' + encodeURIComponent('summarize(' + target + ',"' + STATSD_INTERVAL + 'sec","avg")') +
      '&from=-' + encodeURIComponent(iv) + '&until=-1min&width=' + (w || 120) + '&height=' + (h || 20) +
      '&hideLegend=true&hideAxes=true&hideGrid=true&graphOnly=true&bgcolor=ffffff00&colorList=2f6fdb';
    return '<img class="graphite" alt="" loading="lazy" width="' + (w || 120) + '" height="' + (h || 20) + '" src="' + esc(base + '/render?' + q) + '">';
  }
  function graphiteCard(topic, channel, keys) {
    if (!GRAPH_ENABLED || graphInterval() === 'off') { return ''; }
    return card('Graphite <small>' + esc(graphInterval()) + '</small>', '<div class="graphite-row">' + keys.map(function (k) {
      return '<div class="graphite-graph" data-metric="' + esc(k) + '"><small>' + esc(k) + '</small>' +
        graphiteImg(graphiteTarget(topic, channel, k), 320, 90) + '</div>';
    }).join('') + '</div>');
  }
  var rateCache = {};
  function graphiteRateCell(target) {
    if (!GRAPH_ENABLED) { return ''; }
    var id = 'rate-' + Math.abs(hash(target));
    if (!(target in rateCache)) {
      rateCache[target] = '…';
      api('GET', '/api/graphite?metric=rate&target=' + encodeURIComponent(target)).then(function (d) {
        rateCache[target] = d.rate;
      }, function () { rateCache[target] = 'N/A'; }).then(function () {
        document.querySelectorAll('[data-rate="' + id + '"]').forEach(function (el) { el.textContent = rateCache[target]; });
      });
    }
    return '<td class="num" data-rate="' + id + '">' + esc(rateCache[target]) + '</td>';
  }
  function hash(s) { var h = 0; for (var i = 0; i < s.length; i++) { h = ((h << 5) - h + s.charCodeAt(i)) | 0; } return h; }

  // ---------------------------------------------------------------------------------
  // consumer diagnosis: why does this connection get nothing?
  // ---------------------------------------------------------------------------------
  function diagnose(client, ctx) {
    // ctx: {channel (aggregate), nodeChannel (this node's channel stats), topicPaused, group}
    var reasons = [];
    var queued = ctx.nodeChannel ? ctx.nodeChannel.depth : ctx.channel.depth;
    if (ctx.channel.paused || (ctx.nodeChannel && ctx.nodeChannel.paused)) {
      reasons.push({ level: 'bad', text: 'channel is paused: nsqd delivers nothing until it is unpaused' });
    }
    if (ctx.topicPaused) {
      reasons.push({ level: 'bad', text: 'topic is paused: new messages stay in the topic and never reach this channel' });
    }
    if (client.ready_count === 0) {
      var g = ctx.group;
      if (g && g.conns > 1 && g.rdy < g.conns) {
        reasons.push({ level: 'bad', text: 'max-in-flight below the node count: this consumer has ' + g.conns +
          ' connections but only RDY ' + g.rdy + ' in total, so some nodes (this one now) get RDY 0' });
      } else if (client.in_flight_count === 0 && queued > 0) {
        reasons.push({ level: 'bad', text: 'backoff: RDY 0 with nothing in flight while ' + num(queued) +
          ' messages are queued (the consumer is backing off after failures, or never sent RDY)' });
      } else if (client.in_flight_count === 0) {
        reasons.push({ level: 'warn', text: 'RDY 0: the consumer is not ready for messages' });
      } else {
        reasons.push({ level: 'warn', text: 'RDY 0 while ' + client.in_flight_count + ' in flight: the consumer stopped taking more' });
      }
    } else if (client.in_flight_count >= client.ready_count) {
      reasons.push({ level: 'warn', text: 'saturated: all ' + client.ready_count + ' RDY slots are in flight (max-in-flight reached)' });
    }
    if (!reasons.length) {
      if (queued === 0) { return { level: 'ok', text: 'idle: nothing queued for it' }; }
      return { level: 'ok', text: 'receiving (RDY ' + client.ready_count + ')' };
    }
    return reasons.reduce(function (a, r) { return { level: a.level === 'bad' || r.level === 'bad' ? 'bad' : 'warn', text: a.text ? a.text + '; ' + r.text : r.text }; }, { level: 'warn', text: '' });
  }
  function consumerGroups(clients) {
    var groups = {};
    (clients || []).forEach(function (c) {
      var k = c.hostname + '|' + c.client_id + '|' + c.user_agent;
      var g = groups[k] || (groups[k] = { conns: 0, rdy: 0, nodes: {} });
      g.conns += 1;
      g.rdy += c.ready_count;
      g.nodes[c.node] = true;
    });
    return function (c) { return groups[c.hostname + '|' + c.client_id + '|' + c.user_agent]; };
  }

  // ---------------------------------------------------------------------------------
  // actions
  // ---------------------------------------------------------------------------------
  var actionsDone = 0;
  function actionDone() {
    // lets tests (and curious people) see that an action's request has completed
    actionsDone += 1;
    document.body.setAttribute('data-actions-done', String(actionsDone));
  }
  function runAction(spec) {
    return confirmDialog(spec.title, spec.text, spec.button).then(function (ok) {
      if (!ok) { return; }
      return api(spec.method, spec.path, spec.body).finally(actionDone).then(function (data) {
        if (data && data.message) {
          showBanner('warning', data.message, null, 15000);
        } else {
          showBanner('success', spec.done, null, 5000);
        }
        if (spec.then) { spec.then(); } else { refresh(true); }
      }, function (err) {
        showBanner('error', spec.failed + ': ' + err.message, null, 15000);
      });
    });
  }

  var actions = {
    'pause-topic': function (d) { return topicAct(d.topic, 'pause', 'Pause topic', 'Pause topic "' + d.topic + '" on every node? Messages will pile up in the topic until it is unpaused.', 'Topic ' + d.topic + ' paused'); },
    'unpause-topic': function (d) { return topicAct(d.topic, 'unpause', 'Unpause topic', 'Unpause topic "' + d.topic + '" on every node?', 'Topic ' + d.topic + ' unpaused'); },
    'empty-topic': function (d) { return topicAct(d.topic, 'empty', 'Empty topic queue', 'Empty the queue of topic "' + d.topic + '" on every node? Messages not yet copied to channels are lost.', 'Topic ' + d.topic + ' emptied'); },
    'delete-topic': function (d) {
      return runAction({
        title: 'Delete topic', text: 'Delete topic "' + d.topic + '" and all its channels on every node' + (HAS_LOOKUPD ? ' and in nsqlookupd' : '') + '? Its messages are lost.',
        button: 'Delete', method: 'DELETE', path: '/api/topics/' + encodeURIComponent(d.topic),
        done: 'Topic ' + d.topic + ' deleted', failed: 'Could not delete topic ' + d.topic,
        then: d.stay ? null : function () { navigate(link('/topics')); }
      });
    },
    'pause-channel': function (d) { return channelAct(d, 'pause', 'Pause channel', 'Pause channel "' + d.channel + '" of topic "' + d.topic + '" on every node? Its consumers get nothing until it is unpaused.', 'Channel ' + d.channel + ' paused'); },
    'unpause-channel': function (d) { return channelAct(d, 'unpause', 'Unpause channel', 'Unpause channel "' + d.channel + '" of topic "' + d.topic + '" on every node?', 'Channel ' + d.channel + ' unpaused'); },
    'empty-channel': function (d) { return channelAct(d, 'empty', 'Empty channel queue', 'Empty channel "' + d.channel + '" of topic "' + d.topic + '" on every node? Queued, in-flight and deferred messages are lost.', 'Channel ' + d.channel + ' emptied'); },
    'delete-channel': function (d) {
      return runAction({
        title: 'Delete channel', text: 'Delete channel "' + d.channel + '" of topic "' + d.topic + '" on every node' + (HAS_LOOKUPD ? ' and in nsqlookupd' : '') + '? Its messages are lost and its consumers disconnected.',
        button: 'Delete', method: 'DELETE', path: '/api/topics/' + encodeURIComponent(d.topic) + '/' + encodeURIComponent(d.channel),
        done: 'Channel ' + d.channel + ' deleted', failed: 'Could not delete channel ' + d.channel,
        then: d.stay ? null : function () { navigate(topicURL(d.topic)); }
      });
    },
    'tombstone': function (d) {
      return runAction({
        title: 'Tombstone topic producer', text: 'Tombstone node ' + d.node + ' for topic "' + d.topic + '"? The topic is deleted on that node and ' + (HAS_LOOKUPD ? 'nsqlookupd stops handing it out to consumers for a while.' : 'its messages there are lost.'),
        button: 'Tombstone', method: 'DELETE', path: '/api/nodes/' + encodeURIComponent(d.node), body: { topic: d.topic },
        done: 'Node ' + d.node + ' tombstoned for topic ' + d.topic, failed: 'Could not tombstone ' + d.node
      });
    }
  };
  function topicAct(topic, action, title, text, done) {
    return runAction({ title: title, text: text, button: title.split(' ')[0], method: 'POST',
      path: '/api/topics/' + encodeURIComponent(topic), body: { action: action }, done: done,
      failed: 'Could not ' + action + ' topic ' + topic });
  }
  function channelAct(d, action, title, text, done) {
    return runAction({ title: title, text: text, button: title.split(' ')[0], method: 'POST',
      path: '/api/topics/' + encodeURIComponent(d.topic) + '/' + encodeURIComponent(d.channel), body: { action: action }, done: done,
      failed: 'Could not ' + action + ' channel ' + d.channel });
  }
  function actionButton(action, text, data, cls) {
    if (!IS_ADMIN) { return ''; }
    var attrs = Object.keys(data).map(function (k) { return ' data-' + k + '="' + esc(data[k]) + '"'; }).join('');
    return '<button type="button" class="btn ' + (cls || '') + '" data-action="' + action + '"' + attrs + '>' + esc(text) + '</button>';
  }
  function tombstoneButton(node, topic) {
    if (!IS_ADMIN) { return ''; }
    return '<button type="button" class="icon-btn tombstone" data-action="tombstone" data-node="' + esc(node) + '" data-topic="' + esc(topic) + '" title="tombstone this node for topic ' + esc(topic) + '">&#x2718;</button>';
  }

  document.addEventListener('click', function (ev) {
    var btn = ev.target.closest('[data-action]');
    if (btn && actions[btn.dataset.action]) {
      ev.preventDefault();
      actions[btn.dataset.action](btn.dataset);
      return;
    }
    var a = ev.target.closest('a[href]');
    if (a && !ev.defaultPrevented && ev.button === 0 && !ev.metaKey && !ev.ctrlKey && !ev.shiftKey && !a.target &&
        a.origin === location.origin && (a.pathname === BASE_PATH || a.pathname.indexOf(PREFIX + '/') === 0) &&
        a.pathname.indexOf(PREFIX + '/static/') !== 0 && a.pathname.indexOf(PREFIX + '/api/') !== 0) {
      ev.preventDefault();
      navigate(a.pathname + a.search);
    }
  });

  // ---------------------------------------------------------------------------------
  // views
  // ---------------------------------------------------------------------------------
  function pageHeader(crumbs, right) {
    var html = '<div class="page-head"><h2>' + crumbs.map(function (c, i) {
      return i === crumbs.length - 1 || !c.href ? '<span>' + c.html + '</span>' : '<a href="' + esc(c.href) + '">' + c.html + '</a>';
    }).join('<span class="sep">/</span>') + '</h2>';
    if (right) { html += '<div class="page-actions">' + right + '</div>'; }
    return html + '</div>';
  }
  function card(title, body, extra) {
    return '<section class="card"' + (extra || '') + '>' + (title ? '<h3>' + title + '</h3>' : '') + body + '</section>';
  }
  function notice(text) { return '<div class="notice">' + esc(text) + '</div>'; }

  // -- topics --------------------------------------------------------------------------
  var topicsView = {
    section: 'topics',
    title: function () { return 'Topics'; },
    load: function () {
      return Promise.all([api('GET', '/api/topics'), api('GET', '/api/history').catch(function () { return null; })])
        .then(function (r) { return { topics: r[0], history: r[1] }; });
    },
    render: function (d) {
      var topics = d.topics.topics || [];
      var h = d.history;
      var html = pageHeader([{ html: 'Topics' }]);
      if (h && h.totals) {
        html += card('Cluster <small>up to the last ' + Math.round(h.window / 60) + ' minutes, sampled every ' + h.interval + 's by nsqadmin</small>',
          '<div class="charts">' +
          chart({ id: 'cluster-rate', title: 'Messages published per second', unit: '/s', now: h.now, window: h.window,
            series: [{ name: 'published', points: rates(h.totals, 2) }, { name: 'delivered to channels', points: rates(h.totals, 3) }] }) +
          chart({ id: 'cluster-depth', title: 'Messages waiting in topics', now: h.now, window: h.window,
            series: [{ name: 'topic depth', points: column(h.totals, 1) }] }) + '</div>');
      }
      if (!topics.length) {
        return html + card('', notice('No topics yet. Publish a message to an nsqd (or create a topic on the Lookup page) to get one.'));
      }
      var rows = topics.map(function (t) {
        var pts = h && h.topics && h.topics[t] ? h.topics[t] : [];
        var r = rates(pts, 2);
        var lastRate = r.length ? r[r.length - 1][1] : null;
        var lastDepth = pts.length ? pts[pts.length - 1][1] : null;
        return '<tr data-topic="' + esc(t) + '"><td><a class="topic-link" href="' + esc(topicURL(t)) + '">' + esc(t) + '</a></td>' +
          '<td class="num">' + (lastDepth === null ? '<span class="muted">&ndash;</span>' : num(lastDepth)) + '</td>' +
          '<td class="spark-cell">' + (h ? sparkline(column(pts, 1), h.now, h.window) : '') + '</td>' +
          '<td class="num">' + (lastRate === null ? '<span class="muted">&ndash;</span>' : esc(shortNum(lastRate)) + '/s') + '</td>' +
          '<td class="spark-cell">' + (h ? sparkline(r, h.now, h.window) : '') + '</td>' +
          (GRAPH_ENABLED ? '<td>' + graphiteImg(graphiteTarget(t, '', 'depth')) + '</td><td>' + graphiteImg(graphiteTarget(t, '', 'message_count')) + '</td>' + graphiteRateCell(graphiteTarget(t, '', 'message_count')) : '') +
          '</tr>';
      }).join('');
      html += card('Topics <span class="count">' + topics.length + '</span>',
        '<div class="table-wrap"><table id="topics-table" class="table"><thead><tr><th>Topic</th><th class="num">Depth</th><th>depth history</th><th class="num">Rate</th><th>rate history</th>' +
        (GRAPH_ENABLED ? '<th>Depth (graphite)</th><th>Messages (graphite)</th><th class="num">Rate (graphite)</th>' : '') +
        '</tr></thead><tbody>' + rows + '</tbody></table></div>');
      return html;
    }
  };

  // -- topic ---------------------------------------------------------------------------
  function topicView(topic) {
    return {
      section: 'topics',
      title: function () { return 'Topic ' + topic; },
      load: function () {
        var t = encodeURIComponent(topic);
        return Promise.all([api('GET', '/api/topics/' + t),
          api('GET', '/api/history?topic=' + t).catch(function () { return null; })])
          .then(function (r) { return { topic: r[0], history: r[1] }; });
      },
      render: function (d) {
        var t = d.topic, h = d.history;
        var right = actionButton('empty-topic', 'Empty Queue', { topic: topic }, 'btn-warning') +
          actionButton('delete-topic', 'Delete Topic', { topic: topic }, 'btn-danger') +
          (t.paused ? actionButton('unpause-topic', 'UnPause Topic', { topic: topic }, 'btn-primary')
            : actionButton('pause-topic', 'Pause Topic', { topic: topic }, ''));
        var html = pageHeader([{ html: 'Topics', href: link('/topics') }, { html: esc(topic) + (t.paused ? ' ' + label('paused', 'label-paused') : '') }], right);
        var nodes = t.nodes || [];
        var channels = t.channels || [];
        if (h) {
          var chSeries = Object.keys(h.channels || {}).map(function (c) { return { name: c, points: column(h.channels[c], 1) }; });
          html += card('History <small>up to the last ' + Math.round(h.window / 60) + ' minutes, sampled every ' + h.interval + 's by nsqadmin</small>', '<div class="charts">' +
            chart({ id: 'topic-rate', title: 'Messages per second', unit: '/s', now: h.now, window: h.window,
              series: [{ name: topic, points: rates(h.topic || [], 2) }] }) +
            chart({ id: 'topic-depth', title: 'Depth (topic and channels)', now: h.now, window: h.window,
              series: [{ name: 'topic', points: column(h.topic || [], 1) }].concat(chSeries) }) + '</div>');
        }
        html += graphiteCard(topic, '', ['depth', 'message_count']);
        if (!nodes.length) {
          html += card('Topic Message Queue', notice('No producers exist for this topic. See the Lookup page for topics nsqlookupd knows without producers.'));
        } else {
          var rows = nodes.map(function (n) {
            return '<tr data-node="' + esc(n.node) + '"><td class="host">' + tombstoneButton(n.node, topic) +
              '<a href="' + esc(nodeURL(n.node)) + '">' + esc(hostPort(n.node, n.hostname)) + '</a>' +
              (n.paused ? ' ' + label('paused', 'label-paused') : '') + '</td>' +
              '<td class="num">' + num(n.depth) + '</td><td class="num">' + memDisk(n) + '</td>' +
              '<td class="num">' + num(n.message_count) + '</td><td class="num">' + num((n.channels || []).length) + '</td>' +
              (GRAPH_ENABLED ? graphiteRateCell(graphiteTarget(topic, '', 'message_count', n.node)) : '') +
              '<td>' + e2eCell(n.e2e_processing_latency) + '</td></tr>';
          }).join('');
          rows += '<tr class="total"><td>Total</td><td class="num">' + num(t.depth) + '</td><td class="num">' + memDisk(t) + '</td>' +
            '<td class="num">' + num(t.message_count) + '</td><td class="num">' + num(channels.length) + '</td>' +
            (GRAPH_ENABLED ? graphiteRateCell(graphiteTarget(topic, '', 'message_count')) : '') +
            '<td>' + e2eCell(t.e2e_processing_latency) + '</td></tr>';
          html += card('Topic Message Queue', '<div class="table-wrap"><table id="topic-nodes" class="table"><thead><tr><th>NSQd Host</th><th class="num">Depth</th><th class="num">Memory + Disk</th><th class="num">Messages</th><th class="num">Channels</th>' +
            (GRAPH_ENABLED ? '<th class="num">Rate</th>' : '') + '<th>E2E Processing Latency</th></tr></thead><tbody>' + rows + '</tbody></table></div>');
        }
        if (!channels.length) {
          html += card('Channel Message Queues', notice('No channels exist for this topic. Messages published now stay in the topic until a channel is created.'));
        } else {
          var crow = channels.map(function (c) {
            var chRate = h && h.channels && h.channels[c.channel_name] ? rates(h.channels[c.channel_name], 4) : [];
            return '<tr data-channel="' + esc(c.channel_name) + '"><td><a class="channel-link" href="' + esc(channelURL(topic, c.channel_name)) + '">' + esc(c.channel_name) + '</a>' +
              (c.paused ? ' ' + label('paused', 'label-paused') : '') + '</td>' +
              '<td class="num">' + num(c.depth) + '</td><td class="num">' + memDisk(c) + '</td>' +
              '<td class="num">' + num(c.in_flight_count) + '</td><td class="num">' + num(c.deferred_count) + '</td>' +
              '<td class="num">' + num(c.requeue_count) + '</td><td class="num">' + num(c.timeout_count) + '</td>' +
              '<td class="num">' + num(c.message_count) + '</td>' +
              '<td class="num">' + (chRate.length ? esc(shortNum(chRate[chRate.length - 1][1])) + '/s' : '<span class="muted">&ndash;</span>') + '</td>' +
              (GRAPH_ENABLED ? graphiteRateCell(graphiteTarget(topic, c.channel_name, 'message_count')) : '') +
              '<td class="num">' + num(c.client_count) + '</td><td>' + e2eCell(c.e2e_processing_latency) + '</td></tr>';
          }).join('');
          html += card('Channel Message Queues', '<div class="table-wrap"><table id="topic-channels" class="table"><thead><tr><th>Channel</th><th class="num">Depth</th><th class="num">Memory + Disk</th><th class="num">In-Flight</th><th class="num">Deferred</th><th class="num">Requeued</th><th class="num">Timed Out</th><th class="num">Messages</th><th class="num">Rate</th>' +
            (GRAPH_ENABLED ? '<th class="num">Rate (graphite)</th>' : '') + '<th class="num">Connections</th><th>E2E Processing Latency</th></tr></thead><tbody>' + crow + '</tbody></table></div>');
        }
        return html;
      }
    };
  }

  // -- channel -------------------------------------------------------------------------
  function clientRows(clients, ctxFor, showNode) {
    return (clients || []).map(function (c) {
      var port = String(c.remote_address).split(':').pop();
      var host = esc(c.hostname + ':' + port);
      if (c.client_id && c.client_id !== c.hostname) { host += ' <span class="muted">(' + esc(c.client_id) + ')</span>'; }
      var attrs = [];
      if (c.sample_rate > 0) { attrs.push(label('sampled ' + c.sample_rate + '%', 'label-info')); }
      if (c.tls) { attrs.push(label('TLS' + (c.tls_version ? ' ' + c.tls_version : ''), 'label-ok', c.tls_cipher_suite)); }
      if (c.deflate) { attrs.push(label('deflate', 'label-info')); }
      if (c.snappy) { attrs.push(label('snappy', 'label-info')); }
      if (c.authed) {
        var ident = c.auth_identity || 'authed';
        attrs.push(c.auth_identity_url ? '<a class="label label-ok" href="' + esc(c.auth_identity_url) + '">' + esc(ident) + '</a>' : label(ident, 'label-ok'));
      }
      var dx = ctxFor ? diagnose(c, ctxFor(c)) : null;
      return '<tr data-client="' + esc(c.remote_address) + '" data-node="' + esc(c.node) + '"><td class="host" title="' + esc(c.remote_address) + '">' + host + '<div class="sub">' + esc(c.remote_address) + '</div></td>' +
        '<td>' + esc(c.user_agent) + '</td><td>' + (attrs.join(' ') || '<span class="muted">&ndash;</span>') + '</td>' +
        (showNode ? '<td><a href="' + esc(nodeURL(c.node)) + '">' + esc(c.node) + '</a></td>' : '') +
        '<td class="num">' + num(c.in_flight_count) + '</td><td class="num">' + num(c.ready_count) + '</td>' +
        '<td class="num">' + num(c.finish_count) + '</td><td class="num">' + num(c.requeue_count) + '</td>' +
        '<td class="num">' + num(c.message_count) + '</td><td class="num" title="connected at ' + esc(new Date(c.connect_ts * 1000).toLocaleString()) + '">' + esc(goDuration(c.connected)) + '</td>' +
        (dx ? '<td class="diagnosis diag-' + dx.level + '">' + esc(dx.text) + '</td>' : '') + '</tr>';
    }).join('');
  }
  function clientTable(id, rows, showNode, withDiag) {
    return '<div class="table-wrap"><table id="' + id + '" class="table clients"><thead><tr><th>Client Host</th><th>User-Agent</th><th>Attributes</th>' +
      (showNode ? '<th>NSQd Host</th>' : '') + '<th class="num">In-Flight</th><th class="num">Ready Count</th><th class="num">Finished</th><th class="num">Requeued</th><th class="num">Messages</th><th class="num">Connected</th>' +
      (withDiag ? '<th>Why no messages?</th>' : '') + '</tr></thead><tbody>' + rows + '</tbody></table></div>';
  }

  function channelView(topic, channel) {
    return {
      section: 'topics',
      title: function () { return 'Channel ' + topic + '/' + channel; },
      load: function () {
        var t = encodeURIComponent(topic), c = encodeURIComponent(channel);
        return Promise.all([api('GET', '/api/topics/' + t + '/' + c), api('GET', '/api/topics/' + t).catch(function () { return null; }),
          api('GET', '/api/history?topic=' + t + '&channel=' + c).catch(function () { return null; })])
          .then(function (r) { return { channel: r[0], topic: r[1], history: r[2] }; });
      },
      render: function (d) {
        var c = d.channel, h = d.history;
        var right = actionButton('empty-channel', 'Empty Queue', { topic: topic, channel: channel }, 'btn-warning') +
          actionButton('delete-channel', 'Delete Channel', { topic: topic, channel: channel }, 'btn-danger') +
          (c.paused ? actionButton('unpause-channel', 'UnPause Channel', { topic: topic, channel: channel }, 'btn-primary')
            : actionButton('pause-channel', 'Pause Channel', { topic: topic, channel: channel }, ''));
        var html = pageHeader([{ html: 'Topics', href: link('/topics') }, { html: esc(topic), href: topicURL(topic) },
          { html: esc(channel) + (c.paused ? ' ' + label('paused', 'label-paused') : '') }], c.channel_name === undefined ? '' : right);
        if (c.channel_name === undefined) {
          return html + card('', notice('Channel "' + channel + '" does not exist on any node carrying topic "' + topic + '".'));
        }
        var topicPaused = d.topic ? !!d.topic.paused : false;
        var topicNodePaused = {};
        ((d.topic && d.topic.nodes) || []).forEach(function (n) { topicNodePaused[n.node] = n.paused; });
        if (topicPaused) {
          html += '<div class="notice notice-warn">Topic "' + esc(topic) + '" is paused: new messages are not copied into this channel.</div>';
        }
        if (h) {
          var pts = h.channel || [];
          html += card('History <small>up to the last ' + Math.round(h.window / 60) + ' minutes, sampled every ' + h.interval + 's by nsqadmin</small>', '<div class="charts">' +
            chart({ id: 'channel-rate', title: 'Messages per second into the channel', unit: '/s', now: h.now, window: h.window, series: [{ name: channel, points: rates(pts, 4) }] }) +
            chart({ id: 'channel-depth', title: 'Depth and in-flight', now: h.now, window: h.window,
              series: [{ name: 'depth', points: column(pts, 1) }, { name: 'in flight', points: column(pts, 2) }, { name: 'deferred', points: column(pts, 3) }] }) + '</div>');
        }
        html += graphiteCard(topic, channel, ['depth', 'in_flight_count', 'deferred_count', 'message_count', 'requeue_count', 'timeout_count']);
        var nodes = c.nodes || [];
        var rows = nodes.map(function (n) {
          return '<tr data-node="' + esc(n.node) + '"><td class="host"><a href="' + esc(nodeURL(n.node)) + '">' + esc(hostPort(n.node, n.hostname)) + '</a>' +
            (n.paused ? ' ' + label('paused', 'label-paused') : '') + '</td>' +
            '<td class="num">' + num(n.depth) + '</td><td class="num">' + memDisk(n) + '</td><td class="num">' + num(n.in_flight_count) + '</td>' +
            '<td class="num">' + num(n.deferred_count) + '</td><td class="num">' + num(n.requeue_count) + '</td><td class="num">' + num(n.timeout_count) + '</td>' +
            '<td class="num">' + num(n.message_count) + '</td>' + (GRAPH_ENABLED ? graphiteRateCell(graphiteTarget(topic, channel, 'message_count', n.node)) : '') +
            '<td class="num">' + num(n.client_count) + '</td><td>' + e2eCell(n.e2e_processing_latency) + '</td></tr>';
        }).join('');
        rows += '<tr class="total"><td>Total</td><td class="num">' + num(c.depth) + '</td><td class="num">' + memDisk(c) + '</td><td class="num">' + num(c.in_flight_count) + '</td>' +
          '<td class="num">' + num(c.deferred_count) + '</td><td class="num">' + num(c.requeue_count) + '</td><td class="num">' + num(c.timeout_count) + '</td>' +
          '<td class="num">' + num(c.message_count) + '</td>' + (GRAPH_ENABLED ? graphiteRateCell(graphiteTarget(topic, channel, 'message_count')) : '') +
          '<td class="num">' + num(c.client_count) + '</td><td>' + e2eCell(c.e2e_processing_latency) + '</td></tr>';
        html += card('Channel Message Queue', '<div class="table-wrap"><table id="channel-nodes" class="table"><thead><tr><th>NSQd Host</th><th class="num">Depth</th><th class="num">Memory + Disk</th><th class="num">In-Flight</th><th class="num">Deferred</th><th class="num">Requeued</th><th class="num">Timed Out</th><th class="num">Messages</th>' +
          (GRAPH_ENABLED ? '<th class="num">Rate</th>' : '') + '<th class="num">Connections</th><th>E2E Processing Latency</th></tr></thead><tbody>' + rows + '</tbody></table></div>');
        var clients = c.clients || [];
        if (!clients.length) {
          html += card('Client Connections', notice('No consumers are connected to this channel.'));
        } else {
          var byNode = {};
          nodes.forEach(function (n) { byNode[n.node] = n; });
          var group = consumerGroups(clients);
          var ctxFor = function (cl) {
            return { channel: c, nodeChannel: byNode[cl.node], topicPaused: topicPaused || !!topicNodePaused[cl.node], group: group(cl) };
          };
          html += card('Client Connections <span class="count">' + clients.length + '</span>', clientTable('clients-table', clientRows(clients, ctxFor, true), true, true));
        }
        return html;
      }
    };
  }

  // -- nodes ---------------------------------------------------------------------------
  var nodesView = {
    section: 'nodes',
    title: function () { return 'Nodes'; },
    load: function () { return api('GET', '/api/nodes'); },
    render: function (d) {
      var nodes = d.nodes || [];
      var html = pageHeader([{ html: 'NSQd Nodes (' + nodes.length + ')' }]);
      if (!nodes.length) { return html + card('', notice('No nsqd nodes are known' + (HAS_LOOKUPD ? ' to nsqlookupd.' : '.'))); }
      var rows = nodes.map(function (n) {
        var addr = (n.broadcast_address.indexOf(':') >= 0 ? '[' + n.broadcast_address + ']' : n.broadcast_address) + ':' + n.http_port;
        var conns = (n.remote_addresses || []).length;
        var topics = (n.topics || []).map(function (t) {
          return '<a class="label ' + (t.tombstoned ? 'label-tombstoned' : 'label-topic') + '" href="' + esc(topicURL(t.topic)) + '"' +
            (t.tombstoned ? ' title="tombstoned in nsqlookupd"' : '') + '>' + esc(t.topic) + (t.tombstoned ? ' (tombstoned)' : '') + '</a>';
        }).join(' ');
        return '<tr data-node="' + esc(addr) + '"><td>' + esc(n.hostname) + '</td><td><a class="node-link" href="' + esc(nodeURL(addr)) + '">' + esc(n.broadcast_address) + '</a></td>' +
          '<td class="num">' + esc(n.tcp_port) + '</td><td class="num">' + esc(n.http_port) + '</td>' +
          '<td>' + (n.out_of_date ? label(n.version, 'label-bad', 'older than the newest nsqd in the cluster') : esc(n.version)) + '</td>' +
          (HAS_LOOKUPD ? '<td class="num' + (conns !== NSQLOOKUPD.length ? ' warn' : '') + '" title="' + esc((n.remote_addresses || []).join('\n')) + '">' + conns + '</td>' : '') +
          '<td>' + (topics || '<span class="muted">&ndash;</span>') + '</td></tr>';
      }).join('');
      html += card('', '<div class="table-wrap"><table id="nodes-table" class="table"><thead><tr><th>Hostname</th><th>Broadcast Address</th><th class="num">TCP Port</th><th class="num">HTTP Port</th><th>Version</th>' +
        (HAS_LOOKUPD ? '<th class="num" title="connections to the ' + NSQLOOKUPD.length + ' nsqlookupd">Lookupd Conns.</th>' : '') + '<th>Topics</th></tr></thead><tbody>' + rows + '</tbody></table></div>');
      return html;
    }
  };

  // -- node ----------------------------------------------------------------------------
  function nodeView(node) {
    return {
      section: 'nodes',
      title: function () { return 'Node ' + node; },
      load: function () { return api('GET', '/api/nodes/' + encodeURIComponent(node)); },
      render: function (d) {
        var topics = d.topics || [];
        var nchan = 0;
        topics.forEach(function (t) { nchan += (t.channels || []).length; });
        var html = pageHeader([{ html: 'Nodes', href: link('/nodes') }, { html: esc(node) }]);
        html += '<div class="stats-row">' +
          '<div class="stat"><b id="node-topics">' + num(topics.length) + '</b><span>Topics</span></div>' +
          '<div class="stat"><b id="node-channels">' + num(nchan) + '</b><span>Channels</span></div>' +
          '<div class="stat"><b id="node-clients">' + num(d.total_clients) + '</b><span>Clients</span></div>' +
          '<div class="stat"><b id="node-messages">' + num(d.total_messages) + '</b><span>Messages</span></div></div>';
        if (GRAPH_ENABLED) {
          html += card('Memory (graphite)', '<div class="graphite-row">' + ['heap_objects', 'next_gc_bytes', 'gc_pause_usec_100'].map(function (k) {
            var tgt = metric(k, statsdPrefix(node) + 'mem.' + k);
            return '<div><small>' + esc(k) + '</small>' + graphiteImg(tgt, 240, 60) + '</div>';
          }).join('') + '</div>');
        }
        if (!topics.length) { return html + card('', notice('This node has no topics.')); }
        var body = topics.map(function (t) {
          var rows = '<tr class="topic-row" data-topic="' + esc(t.topic_name) + '"><td class="host">' + tombstoneButton(node, t.topic_name) +
            '<a href="' + esc(topicURL(t.topic_name)) + '"><b>' + esc(t.topic_name) + '</b></a>' + (t.paused ? ' ' + label('paused', 'label-paused') : '') + '</td>' +
            '<td class="num">' + num(t.depth) + '</td><td class="num">' + memDisk(t) + '</td><td class="num">' + num(t.message_count) + '</td>' +
            '<td class="num">' + num((t.channels || []).length) + '</td><td>' + e2eCell(t.e2e_processing_latency) + '</td></tr>';
          (t.channels || []).forEach(function (c) {
            rows += '<tr class="channel-row" data-channel="' + esc(c.channel_name) + '"><td class="indent"><a href="' + esc(channelURL(t.topic_name, c.channel_name)) + '">' + esc(c.channel_name) + '</a>' +
              (c.paused ? ' ' + label('paused', 'label-paused') : '') + '</td>' +
              '<td class="num">' + num(c.depth) + '</td><td class="num">' + memDisk(c) + '</td><td class="num">' + num(c.message_count) + '</td>' +
              '<td class="num" title="in flight / deferred / requeued / timed out">' + num(c.in_flight_count) + ' / ' + num(c.deferred_count) + ' / ' + num(c.requeue_count) + ' / ' + num(c.timeout_count) + '</td>' +
              '<td>' + num(c.client_count) + ' client' + (c.client_count === 1 ? '' : 's') + '</td></tr>';
            if (c.clients && c.clients.length) {
              var group = consumerGroups(c.clients);
              var ctxFor = function (cl) { return { channel: c, nodeChannel: c, topicPaused: t.paused, group: group(cl) }; };
              rows += '<tr class="clients-row"><td colspan="6">' + clientTable('clients-' + esc(t.topic_name) + '-' + esc(c.channel_name), clientRows(c.clients, ctxFor, false), false, true) + '</td></tr>';
            }
          });
          return rows;
        }).join('');
        html += card('Topics and channels', '<div class="table-wrap"><table id="node-topics-table" class="table"><thead><tr><th>Topic / Channel</th><th class="num">Depth</th><th class="num">Memory + Disk</th><th class="num">Messages</th><th class="num">Channels &middot; In-Flight / Deferred / Requeued / Timed Out</th><th>E2E / Clients</th></tr></thead><tbody>' + body + '</tbody></table></div>');
        return html;
      }
    };
  }

  // -- counter -------------------------------------------------------------------------
  var counter = { shown: null, target: null, anim: null, last: null, rate: 0 };
  function animateCounter() {
    var el = document.getElementById('counter-total');
    if (!el || counter.target === null) { return; }
    if (counter.shown === null) { counter.shown = counter.target; }
    var diff = counter.target - counter.shown;
    if (Math.abs(diff) < 1) { counter.shown = counter.target; } else { counter.shown += diff * 0.15; }
    el.textContent = num(Math.round(counter.shown));
    counter.anim = counter.shown === counter.target ? null : requestAnimationFrame(animateCounter);
  }
  var counterView = {
    section: 'counter',
    interval: 1000,
    title: function () { return 'Counter'; },
    shell: function () {
      counter.shown = null;
      counter.last = null;
      return pageHeader([{ html: 'Messages Processed' }]) +
        '<section class="card counter-card"><div id="counter-total" class="counter-number">&hellip;</div>' +
        '<div class="counter-sub"><span id="counter-rate">&ndash;</span> messages/s &middot; across <span id="counter-channels">0</span> channels on <span id="counter-nodes">0</span> nodes</div></section>' +
        '<div id="live"></div>';
    },
    load: function () { return api('GET', '/api/counter'); },
    render: function (d) {
      var stats = d.stats || {};
      var total = 0, chans = {}, nodes = {}, perTopic = {};
      Object.keys(stats).forEach(function (k) {
        var s = stats[k];
        total += s.message_count;
        chans[s.topic_name + '/' + s.channel_name] = true;
        nodes[s.node] = true;
        perTopic[s.topic_name] = (perTopic[s.topic_name] || 0) + s.message_count;
      });
      var now = Date.now() / 1000;
      if (counter.last && now > counter.last.t) {
        counter.rate = Math.max(0, (total - counter.last.v) / (now - counter.last.t));
      }
      counter.last = { t: now, v: total };
      counter.target = total;
      var r = document.getElementById('counter-rate');
      if (r) { r.textContent = shortNum(counter.rate); }
      var cc = document.getElementById('counter-channels');
      if (cc) { cc.textContent = Object.keys(chans).length; }
      var cn = document.getElementById('counter-nodes');
      if (cn) { cn.textContent = Object.keys(nodes).length; }
      if (!counter.anim) { counter.anim = requestAnimationFrame(animateCounter); }
      var rows = Object.keys(perTopic).sort().map(function (t) {
        return '<tr><td><a href="' + esc(topicURL(t)) + '">' + esc(t) + '</a></td><td class="num">' + num(perTopic[t]) + '</td></tr>';
      }).join('');
      return rows ? card('By topic <small>messages delivered to channels</small>', '<table class="table narrow"><tbody>' + rows + '</tbody></table>') : '';
    }
  };

  // -- lookup --------------------------------------------------------------------------
  var lookupView = {
    section: 'lookup',
    title: function () { return 'Lookup'; },
    shell: function () {
      var html = pageHeader([{ html: 'Lookup' }]);
      if (!HAS_LOOKUPD) {
        return html + card('', notice('nsqadmin is not configured with nsqlookupd hosts')) + '<div id="live"></div>';
      }
      html += card('nsqlookupd hosts', '<ul class="hosts">' + NSQLOOKUPD.map(function (a) { return '<li><code>' + esc(a) + '</code></li>'; }).join('') + '</ul>');
      if (IS_ADMIN) {
        html += card('Create Topic/Channel', '<form id="create-form" class="form-inline" autocomplete="off">' +
          '<label>Topic <input id="create-topic" name="topic" required maxlength="64" pattern="[.a-zA-Z0-9_\\-]+(#ephemeral)?" placeholder="topic name"></label>' +
          '<label>Channel <input id="create-channel" name="channel" maxlength="64" pattern="[.a-zA-Z0-9_\\-]+(#ephemeral)?" placeholder="optional channel name"></label>' +
          '<button type="submit" id="create-submit" class="btn btn-primary">Create</button></form>' +
          '<p class="hint">Creates the topic (and channel) in every nsqlookupd, so producers and consumers can find it before any message exists; a new channel is also created on every nsqd that has the topic.</p>');
      }
      return html + '<div id="live"></div>';
    },
    load: function () {
      if (!HAS_LOOKUPD) { return Promise.resolve(null); }
      return Promise.all([api('GET', '/api/topics?inactive=true'), api('GET', '/api/topics')]).then(function (r) {
        var d = r[0];
        d.all = r[1].topics || [];
        if (r[1].message && !d.message) { d.message = r[1].message; }
        return d;
      });
    },
    render: function (d) {
      if (!d) { return ''; }
      var topics = d.topics || {};
      var names = Object.keys(topics).sort();
      var active = d.all.filter(function (t) { return !(t in topics); });
      var html = card('Topics in nsqlookupd <span class="count">' + d.all.length + '</span>', d.all.length ?
        '<div id="lookupd-topics" class="topic-cloud">' + d.all.map(function (t) {
          return '<a class="label ' + (t in topics ? 'label-inactive' : 'label-topic') + '" href="' + esc(topicURL(t)) + '"' +
            (t in topics ? ' title="no producers"' : '') + '>' + esc(t) + '</a>';
        }).join(' ') + '</div><p class="hint">' + active.length + ' with producers, ' + names.length + ' without (listed below).</p>'
        : notice('nsqlookupd knows no topics yet.'));
      if (!names.length) {
        return html + card('Inactive Topics', notice('No inactive topics: every topic nsqlookupd knows has at least one producer.'));
      }
      var items = names.map(function (t) {
        var chans = (topics[t] || []).map(function (c) {
          return '<li data-channel="' + esc(c) + '">' + esc(c) + (IS_ADMIN ? ' <button type="button" class="icon-btn delete-inactive-channel" data-action="delete-channel" data-stay="1" data-topic="' + esc(t) + '" data-channel="' + esc(c) + '" title="delete channel ' + esc(c) + '">&#x2718;</button>' : '') + '</li>';
        }).join('');
        return '<li class="inactive-topic" data-topic="' + esc(t) + '"><span class="topic-name">' + esc(t) + '</span>' +
          (IS_ADMIN ? ' <button type="button" class="icon-btn delete-inactive-topic" data-action="delete-topic" data-stay="1" data-topic="' + esc(t) + '" title="delete topic ' + esc(t) + '">&#x2718;</button>' : '') +
          (chans ? '<ul class="channels">' + chans + '</ul>' : '') + '</li>';
      }).join('');
      return html + card('Inactive Topics <small>known to nsqlookupd, without producers</small>', '<ul id="inactive-topics" class="tree">' + items + '</ul>');
    }
  };

  document.addEventListener('submit', function (ev) {
    if (ev.target.id !== 'create-form') { return; }
    ev.preventDefault();
    var topic = document.getElementById('create-topic').value.trim();
    var channel = document.getElementById('create-channel').value.trim();
    var body = { topic: topic };
    if (channel) { body.channel = channel; }
    confirmDialog('Create', 'Create topic "' + topic + '"' + (channel ? ' and channel "' + channel + '"' : '') + ' in nsqlookupd?', 'Create').then(function (ok) {
      if (!ok) { return; }
      api('POST', '/api/topics', body).finally(actionDone).then(function (data) {
        if (data.message) { showBanner('warning', data.message, null, 15000); } else { showBanner('success', 'Created ' + topic + (channel ? '/' + channel : ''), null, 5000); }
        document.getElementById('create-topic').value = '';
        document.getElementById('create-channel').value = '';
        refresh(true);
      }, function (err) { showBanner('error', 'Could not create: ' + err.message, null, 15000); });
    });
  });

  // ---------------------------------------------------------------------------------
  // router and live refresh
  // ---------------------------------------------------------------------------------
  function route(pathname) {
    var p = pathname;
    if (PREFIX && p.indexOf(PREFIX) === 0) { p = p.slice(PREFIX.length); }
    var parts = p.split('/').filter(function (x) { return x !== ''; }).map(function (x) {
      try { return decodeURIComponent(x); } catch (e) { return x; }
    });
    if (!parts.length || (parts[0] === 'topics' && parts.length === 1)) { return topicsView; }
    if (parts[0] === 'topics' && parts.length === 2) { return topicView(parts[1]); }
    if (parts[0] === 'topics' && parts.length === 3) { return channelView(parts[1], parts[2]); }
    if (parts[0] === 'nodes' && parts.length === 1) { return nodesView; }
    if (parts[0] === 'nodes' && parts.length === 2) { return nodeView(parts[1]); }
    if (parts[0] === 'counter') { return counterView; }
    if (parts[0] === 'lookup') { return lookupView; }
    return topicsView;
  }

  var current = null, timer = null, seq = 0, busy = false;
  function refreshInterval() {
    var v = localStorage.getItem('nsqadmin_refresh');
    v = v === null ? 5000 : parseInt(v, 10) || 0;
    if (v && current && current.interval) { return Math.min(v, current.interval); }
    return v;
  }
  function schedule() {
    clearTimeout(timer);
    var iv = refreshInterval();
    var dot = document.getElementById('live-dot');
    if (dot) { dot.classList.toggle('off', !iv); }
    if (iv > 0) { timer = setTimeout(function () { refresh(false); }, iv); }
  }
  function refresh(force) {
    if (busy && !force) { schedule(); return Promise.resolve(); }
    if ((!modal.hidden || document.hidden) && !force) { schedule(); return Promise.resolve(); }
    var view = current, mySeq = ++seq;
    busy = true;
    return view.load().then(function (data) {
      if (mySeq !== seq || view !== current) { return; }
      clearBanner('api-error');
      apiMessage(data && (data.message !== undefined ? data : (data.topic || data.channel || data.topics || {})));
      var target = document.getElementById('live') || app;
      var html = view.render(data);
      if (target.__html !== html) {
        target.innerHTML = html;
        target.__html = html;
      }
      app.setAttribute('data-loaded', String(mySeq));
      document.body.classList.remove('stale');
    }, function (err) {
      if (mySeq !== seq || view !== current) { return; }
      showBanner('error', err.message, 'api-error');
      document.body.classList.add('stale');
      var target = document.getElementById('live') || app;
      if (!target.__html) { target.innerHTML = card('', notice('Could not load this page: ' + err.message)); target.__html = 'error'; }
      app.setAttribute('data-loaded', String(mySeq));
    }).then(function () {
      busy = false;
      if (view === current) { schedule(); }
    });
  }
  function show(pathname) {
    current = route(pathname);
    seq++;
    busy = false;
    clearBanner('api-warning');
    clearBanner('api-error');
    document.title = current.title() + ' - nsqadmin';
    document.querySelectorAll('.mainnav a').forEach(function (a) { a.classList.toggle('active', a.dataset.section === current.section); });
    app.innerHTML = current.shell ? current.shell() : '<div class="loading">Loading&hellip;</div>';
    app.__html = null;
    app.removeAttribute('data-loaded');
    return refresh(true);
  }
  function navigate(url) {
    history.pushState(null, '', url);
    window.scrollTo(0, 0);
    show(location.pathname);
  }
  window.addEventListener('popstate', function () { show(location.pathname); });

  var refreshSelect = document.getElementById('refresh-select');
  refreshSelect.value = localStorage.getItem('nsqadmin_refresh') || '5000';
  refreshSelect.addEventListener('change', function () {
    localStorage.setItem('nsqadmin_refresh', refreshSelect.value);
    schedule();
  });
  var gi = document.getElementById('graph-interval');
  if (gi) {
    gi.value = graphInterval();
    gi.addEventListener('change', function () {
      localStorage.setItem('nsqadmin_graph_interval', gi.value);
      refresh(true);
    });
  }
  document.addEventListener('visibilitychange', function () { if (!document.hidden) { refresh(true); } });

  window.nsqadmin = { refresh: refresh, navigate: navigate, diagnose: diagnose };
  show(location.pathname);
})();
