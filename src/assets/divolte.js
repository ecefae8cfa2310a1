/*
 * divolte-collector tracking tag.
 *
 * Sends one image request per event to the collector that served this
 * script, in the Divolte pixel protocol: parameters p s v e c n f l r i j k
 * w h t u x, numbers in base 36, custom parameters in mincode, and a
 * MurmurHash3 checksum over the rest. The collector substitutes the
 * settings object below when it serves the file.
 *
 * Optionally (all off unless configured): events queued or signalled while
 * the page hides go in one sendBeacon POST to the batch endpoint; nothing
 * is stored or sent before divolte.consent(true); browsers with Global
 * Privacy Control or Do Not Track on are not tracked at all.
 */
(function (root, factory) {
  'use strict';
  var existing = root && root.divolte;
  if (existing && typeof existing === 'object') {
    return; // Loaded twice: keep the first instance and its page view.
  }
  var api = factory(root, root.document);
  if (typeof define === 'function' && define.amd) {
    define([], function () { return api; });
  } else if (typeof module === 'object' && module.exports) {
    module.exports = api;
  }
  root.divolte = api;
}(typeof window !== 'undefined' ? window : this, function (win, doc) {
  'use strict';

  var SETTINGS = /*SETTINGS*/{
    partyCookie: '_dvp',
    partyTimeoutSeconds: 63072000,
    sessionCookie: '_dvs',
    sessionTimeoutSeconds: 1800,
    cookieDomain: '',
    sameSite: '',
    secure: false,
    logging: false,
    scriptName: 'divolte.js',
    eventSuffix: 'csc-event',
    autoPageView: true,
    eventTimeoutMillis: 750,
    beacon: false,
    batchSuffix: 'csc-batch',
    requireConsent: false,
    respectGpc: false,
    respectDnt: false
  }/*END*/;

  function log() {
    if (SETTINGS.logging && win.console && win.console.log) {
      win.console.log.apply(win.console, ['[divolte]'].concat([].slice.call(arguments)));
    }
  }

  /* ---- Identifiers ------------------------------------------------------ */

  var ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789~_';

  // 32 characters from 32 random bytes, 6 bits each. Without a secure
  // random source the id ends in '!', as the protocol asks.
  function randomChars() {
    var out = '';
    var bytes = null;
    var cryptoApi = win.crypto || win.msCrypto;
    if (cryptoApi && cryptoApi.getRandomValues && typeof Uint8Array !== 'undefined') {
      bytes = new Uint8Array(32);
      cryptoApi.getRandomValues(bytes);
    }
    for (var i = 0; i < 32; i++) {
      var b = bytes ? bytes[i] : Math.floor(Math.random() * 256);
      out += ID_ALPHABET.charAt(b & 63);
    }
    return bytes ? out : out + '!';
  }

  function timedId(now) {
    return '0:' + now.toString(36) + ':' + randomChars();
  }

  /* ---- Cookies ---------------------------------------------------------- */

  function readCookie(name) {
    var escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    var match = new RegExp('(?:^|;)\\s*' + escaped + '=([^;]*)').exec(doc.cookie);
    return match ? decodeURIComponent(match[1]) : null;
  }

  // seconds = 0 deletes the cookie.
  function writeCookie(name, value, seconds, now) {
    var cookie = name + '=' + encodeURIComponent(value) +
      '; path=/; expires=' + new Date(seconds ? now + seconds * 1000 : 0).toUTCString() +
      '; max-age=' + seconds;
    if (SETTINGS.cookieDomain) {
      cookie += '; domain=' + SETTINGS.cookieDomain;
    }
    if (SETTINGS.sameSite) {
      cookie += '; SameSite=' + SETTINGS.sameSite;
    }
    if (SETTINGS.secure) {
      cookie += '; Secure';
    }
    doc.cookie = cookie;
  }

  // A cookie value is only reused when it is a Divolte identifier.
  function validId(value) {
    return value !== null && /^0:[+-]?[0-9a-zA-Z]+:.*$/.test(value) ? value : null;
  }

  /* ---- Checksum: MurmurHash3 x86_32 over UTF-8 --------------------------- */

  function utf8Bytes(s) {
    var bytes = [];
    for (var i = 0; i < s.length; i++) {
      var c = s.charCodeAt(i);
      if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
        var low = s.charCodeAt(i + 1);
        if (low >= 0xdc00 && low < 0xe000) {
          c = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
          i++;
        }
      }
      if (c < 0x80) {
        bytes.push(c);
      } else if (c < 0x800) {
        bytes.push(0xc0 | (c >> 6), 0x80 | (c & 63));
      } else if (c < 0x10000) {
        bytes.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
      } else {
        bytes.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
      }
    }
    return bytes;
  }

  var imul = Math.imul || function (a, b) {
    var lo = (a & 0xffff) * b;
    var hi = ((a >>> 16) * b) & 0xffff;
    return (lo + (hi << 16)) | 0;
  };

  function rotl(x, r) {
    return (x << r) | (x >>> (32 - r));
  }

  function murmur3(bytes) {
    var c1 = 0xcc9e2d51;
    var c2 = 0x1b873593;
    var h = 0;
    var len = bytes.length;
    var blocks = len & ~3;
    var k;
    for (var i = 0; i < blocks; i += 4) {
      k = bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
      k = imul(rotl(imul(k, c1), 15), c2);
      h = rotl(h ^ k, 13);
      h = (imul(h, 5) + 0xe6546b64) | 0;
    }
    k = 0;
    switch (len & 3) {
      case 3: k ^= bytes[blocks + 2] << 16; // falls through
      case 2: k ^= bytes[blocks + 1] << 8; // falls through
      case 1:
        k ^= bytes[blocks];
        h ^= imul(rotl(imul(k, c1), 15), c2);
    }
    h ^= len;
    h ^= h >>> 16;
    h = imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    return h | 0;
  }

  // params: [[name, value], ...] in sending order, without 'x'.
  function checksum(params) {
    var byName = {};
    var names = [];
    for (var i = 0; i < params.length; i++) {
      var name = params[i][0];
      if (!byName.hasOwnProperty(name)) {
        byName[name] = [];
        names.push(name);
      }
      byName[name].push(params[i][1]);
    }
    names.sort();
    var canonical = '';
    for (var j = 0; j < names.length; j++) {
      canonical += names[j] + '=';
      for (var v = 0; v < byName[names[j]].length; v++) {
        canonical += byName[names[j]][v] + ',';
      }
      canonical += ';';
    }
    return murmur3(utf8Bytes(canonical)).toString(36);
  }

  /* ---- Mincode: compact JSON for custom parameters ---------------------- */

  function escapeText(s) {
    return s.replace(/[~!]/g, '~$&');
  }

  function pad(n, width) {
    var s = String(n);
    while (s.length < width) {
      s = '0' + s;
    }
    return s;
  }

  function isoDate(d) {
    return d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1, 2) + '-' + pad(d.getUTCDate(), 2) +
      'T' + pad(d.getUTCHours(), 2) + ':' + pad(d.getUTCMinutes(), 2) + ':' + pad(d.getUTCSeconds(), 2) +
      '.' + pad(d.getUTCMilliseconds(), 3) + 'Z';
  }

  function encodeNumber(n) {
    if (!isFinite(n)) {
      return 'n';
    }
    var plain = String(n);
    if (Math.floor(n) === n) {
      var base36 = n.toString(36);
      if (base36.length <= plain.length && base36.indexOf('e') < 0) {
        return 'd' + base36 + '!';
      }
    }
    return 'j' + plain + '!';
  }

  // Encodes a value; `name` (a string) is written after the type character
  // inside objects. Returns undefined for values that are left out.
  function mincode(value, name) {
    var label = name === undefined ? '' : escapeText(name) + '!';
    if (value !== null && typeof value === 'object' && typeof value.toJSON === 'function' &&
        !(value instanceof Date)) {
      value = value.toJSON();
    }
    if (value === null) {
      return 'n' + label;
    }
    if (value instanceof Date) {
      return isNaN(value.getTime()) ? 'n' + label : 's' + label + escapeText(isoDate(value)) + '!';
    }
    switch (typeof value) {
      case 'string':
        return 's' + label + escapeText(value) + '!';
      case 'number':
        var num = encodeNumber(value);
        return num.charAt(0) + label + num.substring(1);
      case 'boolean':
        return (value ? 't' : 'f') + label;
      case 'object':
        var out;
        if (Object.prototype.toString.call(value) === '[object Array]') {
          out = 'a' + label;
          for (var i = 0; i < value.length; i++) {
            var item = mincode(value[i]);
            out += item === undefined ? 'n' : item;
          }
          return out + '.';
        }
        out = '(' + label;
        for (var key in value) {
          if (Object.prototype.hasOwnProperty.call(value, key)) {
            var field = mincode(value[key], key);
            if (field !== undefined) {
              out += field;
            }
          }
        }
        return out + ')';
      default:
        return undefined; // functions, symbols, undefined
    }
  }

  /* ---- Where events go -------------------------------------------------- */

  function findScriptUrl() {
    var current = doc.currentScript;
    if (current && current.src) {
      return current.src;
    }
    var pattern = new RegExp('/' + SETTINGS.scriptName.replace(/\./g, '\\.') + '(?:[?#].*)?$');
    var scripts = doc.getElementsByTagName('script');
    var found = [];
    for (var i = 0; i < scripts.length; i++) {
      if (scripts[i].src && pattern.test(scripts[i].src)) {
        found.push(scripts[i].src);
      }
    }
    if (found.length !== 1) {
      throw new Error('divolte: found ' + found.length + ' script tags for ' + SETTINGS.scriptName + '; expected 1');
    }
    return found[0];
  }

  var scriptUrl = findScriptUrl();
  var hashAt = scriptUrl.indexOf('#');
  var serverPageViewId = hashAt >= 0 ? decodeURIComponent(scriptUrl.substring(hashAt + 1)) : '';
  if (serverPageViewId.indexOf('/') >= 0) {
    throw new Error('divolte: a page view id in the script URL may not contain /');
  }
  var scriptPath = hashAt >= 0 ? scriptUrl.substring(0, hashAt) : scriptUrl;
  var queryAt = scriptPath.indexOf('?');
  if (queryAt >= 0) {
    scriptPath = scriptPath.substring(0, queryAt);
  }
  var scriptDir = scriptPath.substring(0, scriptPath.lastIndexOf('/') + 1);
  var eventUrl = scriptDir + SETTINGS.eventSuffix;
  var batchUrl = scriptDir + SETTINGS.batchSuffix;

  /* ---- Consent and opt-out ---------------------------------------------- */

  var nav = win.navigator || {};
  // The browser's own signals win over a consent the page reports.
  var optedOut = (SETTINGS.respectGpc && nav.globalPrivacyControl === true) ||
    (SETTINGS.respectDnt && (nav.doNotTrack === '1' || nav.doNotTrack === 'yes' || win.doNotTrack === '1'));
  var consented = !SETTINGS.requireConsent;

  function tracking() {
    return consented && !optedOut;
  }

  /* ---- Identity --------------------------------------------------------- */

  var partyId = null;
  var isNewParty = false;
  var sessionId = null;
  var isFirstInSession = false;
  var pageViewId = null;
  var eventCounter = 0;
  var firstEventSent = false;

  // Reads the ids from the cookies, or makes new ones. Only while tracking:
  // before consent nothing is read or written.
  function initIdentity(now) {
    partyId = validId(readCookie(SETTINGS.partyCookie));
    isNewParty = partyId === null;
    if (isNewParty) {
      partyId = timedId(now);
    }
    sessionId = validId(readCookie(SETTINGS.sessionCookie));
    isFirstInSession = sessionId === null;
    if (isFirstInSession) {
      sessionId = timedId(now);
    }
    firstEventSent = false;
  }

  function refreshCookies(now) {
    writeCookie(SETTINGS.partyCookie, partyId, SETTINGS.partyTimeoutSeconds, now);
    writeCookie(SETTINGS.sessionCookie, sessionId, SETTINGS.sessionTimeoutSeconds, now);
  }

  if (tracking()) {
    initIdentity(new Date().getTime());
  } else {
    log(optedOut ? 'not tracking: the browser asks not to be tracked' : 'waiting for consent');
  }

  /* ---- Delivery: one request at a time, in order ------------------------ */

  var queue = [];
  var busy = false;
  var unloading = false;

  function next() {
    busy = false;
    if (queue.length > 0) {
      deliver(queue.shift());
    }
  }

  function deliver(item) {
    busy = true;
    if (item.callback) {
      item.callback();
      next();
      return;
    }
    var done = false;
    var finish = function () {
      if (!done) {
        done = true;
        next();
      }
    };
    var image = new Image(1, 1);
    image.onload = finish;
    image.onerror = finish;
    win.setTimeout(finish, SETTINGS.eventTimeoutMillis);
    image.src = item.url;
  }

  function enqueue(item) {
    if (busy) {
      queue.push(item);
    } else {
      deliver(item);
    }
  }

  /* ---- Delivery while the page hides: one beacon ------------------------ */

  var canBeacon = SETTINGS.beacon && typeof nav.sendBeacon === 'function';
  var pendingBeacon = []; // { url } and { callback } items given while hiding
  var beaconDue = false;

  function later(fn) {
    if (typeof Promise !== 'undefined') {
      Promise.resolve().then(fn);
    } else {
      fn();
    }
  }

  // Everything given in one turn of the page (a pagehide handler's events
  // and whenCommitted callbacks) leaves in one beacon.
  function holdForBeacon(item) {
    pendingBeacon.push(item);
    if (!beaconDue) {
      beaconDue = true;
      later(flushBeacon);
    }
  }

  // Sends the queued events and those given while hiding as lines of one
  // POST to the batch endpoint, then runs the callbacks among them. If the
  // browser refuses the beacon (too large, or its budget spent), images
  // carry them as before.
  function flushBeacon() {
    beaconDue = false;
    var held = pendingBeacon;
    pendingBeacon = [];
    var items = queue.concat(held);
    var lines = [];
    for (var i = 0; i < items.length; i++) {
      if (items[i].url) {
        lines.push(items[i].url.substring(items[i].url.indexOf('?') + 1));
      }
    }
    var sent = false;
    if (lines.length > 0) {
      try {
        sent = nav.sendBeacon(batchUrl, lines.join('\n'));
      } catch (e) {
        sent = false;
      }
      log('beacon', lines.length, sent);
    }
    if (!sent) {
      for (var k = 0; k < held.length; k++) {
        enqueue(held[k]);
      }
      return;
    }
    queue = [];
    for (var c = 0; c < items.length; c++) {
      if (items[c].callback) {
        items[c].callback();
      }
    }
  }

  function hiding() {
    unloading = true;
    if (canBeacon) {
      flushBeacon();
    }
  }

  /* ---- Events ----------------------------------------------------------- */

  function viewport() {
    var de = doc.documentElement;
    var body = doc.body;
    return [
      win.innerWidth || (de && de.clientWidth) || (body && body.clientWidth) || (body && body.offsetWidth),
      win.innerHeight || (de && de.clientHeight) || (body && body.clientHeight) || (body && body.offsetHeight)
    ];
  }

  function startPageView() {
    pageViewId = serverPageViewId || ('0:' + randomChars());
    eventCounter = 0;
    log('page view', pageViewId);
    if (SETTINGS.autoPageView) {
      signal('pageView');
    }
  }

  function signal(type, params) {
    if (!type || !tracking()) {
      return null;
    }
    if (pageViewId === null) {
      pageViewId = serverPageViewId || ('0:' + randomChars());
    }
    var now = new Date().getTime();
    var eventId = pageViewId + (eventCounter++).toString(16);
    refreshCookies(now);
    var size = viewport();
    var screen = win.screen || {};
    var fields = [
      ['p', partyId],
      ['s', sessionId],
      ['v', pageViewId],
      ['e', eventId],
      ['c', now.toString(36)],
      ['n', isNewParty && !firstEventSent ? 't' : 'f'],
      ['f', isFirstInSession && !firstEventSent ? 't' : 'f'],
      ['l', win.location.href]
    ];
    if (doc.referrer) {
      fields.push(['r', doc.referrer]);
    }
    var numbers = [
      ['i', screen.availWidth], ['j', screen.availHeight], ['k', win.devicePixelRatio],
      ['w', size[0]], ['h', size[1]]
    ];
    for (var i = 0; i < numbers.length; i++) {
      if (typeof numbers[i][1] === 'number' && isFinite(numbers[i][1])) {
        fields.push([numbers[i][0], numbers[i][1].toString(36)]);
      }
    }
    fields.push(['t', String(type)]);
    var custom = params === undefined ? undefined : mincode(params);
    if (custom !== undefined) {
      fields.push(['u', custom]);
    }
    fields.push(['x', checksum(fields)]);
    firstEventSent = true;

    var query = '';
    for (var j = 0; j < fields.length; j++) {
      query += (j ? '&' : '') + fields[j][0] + '=' + encodeURIComponent(fields[j][1]);
    }
    log('event', type, eventId);
    var item = { url: eventUrl + '?' + query };
    if (canBeacon && unloading) {
      holdForBeacon(item);
    } else {
      enqueue(item);
    }
    return eventId;
  }

  function whenCommitted(callback, timeoutMillis) {
    var called = false;
    var once = function () {
      if (!called) {
        called = true;
        callback();
      }
    };
    if (typeof timeoutMillis === 'number' && timeoutMillis >= 0) {
      win.setTimeout(once, timeoutMillis);
    }
    if (canBeacon && unloading) {
      holdForBeacon({ callback: once });
    } else {
      enqueue({ callback: once });
    }
  }

  /* ---- Page-view lifecycle ---------------------------------------------- */

  function visible() {
    var state = doc.visibilityState || doc.webkitVisibilityState || doc.mozVisibilityState || doc.msVisibilityState;
    return state === undefined || state === 'visible';
  }

  // A page loaded hidden (prerendered, a background tab) starts its page
  // view when first shown (or with the first signal()); one that hides
  // sends what it has queued.
  if (visible() && tracking()) {
    startPageView();
  }
  doc.addEventListener('visibilitychange', function () {
    if (!visible()) {
      hiding();
      return;
    }
    unloading = false;
    if (pageViewId === null && tracking()) {
      startPageView();
    }
  }, false);

  win.addEventListener('pagehide', hiding, false);
  win.addEventListener('pageshow', function (event) {
    unloading = false;
    if (event.persisted && tracking()) {
      // Restored from the back/forward cache: a new page view.
      firstEventSent = true;
      startPageView();
    }
  }, false);

  // The page reports the visitor's choice (from its consent banner). Yes:
  // ids are read or made and the page view starts. No: the cookies are
  // deleted and nothing more is sent.
  function consent(granted) {
    if (granted) {
      if (consented) {
        return;
      }
      consented = true;
      if (!tracking()) {
        log('consent given, but the browser asks not to be tracked');
        return;
      }
      initIdentity(new Date().getTime());
      if (visible()) {
        startPageView();
      }
      return;
    }
    consented = false;
    queue = [];
    pendingBeacon = [];
    var now = new Date().getTime();
    writeCookie(SETTINGS.partyCookie, '', 0, now);
    writeCookie(SETTINGS.sessionCookie, '', 0, now);
    partyId = null;
    sessionId = null;
    pageViewId = null;
    log('consent withdrawn');
  }

  /* ---- Public API ------------------------------------------------------- */

  var api = {
    signal: signal,
    whenCommitted: whenCommitted,
    consent: consent
  };
  var properties = {
    partyId: function () { return partyId; },
    sessionId: function () { return sessionId; },
    pageViewId: function () { return pageViewId; },
    isNewPartyId: function () { return isNewParty; },
    isFirstInSession: function () { return isFirstInSession; },
    isServerPageView: function () { return serverPageViewId !== ''; }
  };
  for (var name in properties) {
    if (properties.hasOwnProperty(name)) {
      Object.defineProperty(api, name, { get: properties[name], enumerable: true });
    }
  }
  // Exposed for tests of the wire format; not part of the tag's contract.
  api._wire = { checksum: checksum, mincode: mincode, murmur3: murmur3, utf8Bytes: utf8Bytes };
  return api;
}));
