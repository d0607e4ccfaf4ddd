// count.js: logsvc's GoatCounter-compatible tracking script (plain ES2017, no build step).
//
//   <script data-goatcounter="https://stats.example.com/count" async src="https://stats.example.com/count.js"></script>
//
// Sends what GoatCounter's count.js sends, to the same /count endpoint, and reads the same settings from
// window.goatcounter or data-goatcounter-settings='{"allow_local": true}'. Sets no cookie and stores nothing.
;(function () {
  'use strict'

  const gc = (window.goatcounter = window.goatcounter || {})
  const script = document.querySelector('script[data-goatcounter]')
  const SETTINGS = ['no_onload', 'no_events', 'allow_local', 'allow_frame', 'path', 'title', 'referrer', 'event']
  const LOCAL = /(localhost$|^127\.|^10\.|^172\.(1[6-9]|2[0-9]|3[01])\.|^192\.168\.|^0\.0\.0\.0$|^\[::1?\]$)/

  const warn = (msg) => console.warn('goatcounter: ' + msg)

  // The attribute wins over window.goatcounter, as in GoatCounter.
  if (script && script.dataset.goatcounterSettings) {
    try {
      const set = JSON.parse(script.dataset.goatcounterSettings)
      for (const k of SETTINGS) if (k in set) gc[k] = set[k]
    } catch (err) {
      warn('invalid JSON in data-goatcounter-settings: ' + err)
    }
  }

  // The page's path: the canonical URL's when it is on this host (www. or not), else the address bar's.
  const get_path = () => {
    let loc = location
    const link = document.querySelector('link[rel="canonical"][href]')
    if (link) {
      try {
        const url = new URL(link.href, location.href)
        if (url.hostname.replace(/^www\./, '') === location.hostname.replace(/^www\./, '')) loc = url
      } catch (err) {} // an unparseable canonical href: count the address bar's path
    }
    return loc.pathname + loc.search || '/'
  }

  // vars.name, else the setting, else the page's own value; a callback setting is given the page's value and
  // returns what to send (null for the path: don't count).
  const pick = (vars, name, own) => {
    const v = vars[name] === undefined ? gc[name] : vars[name]
    if (typeof v === 'function') return v(own())
    return v === undefined || v === null ? own() : v
  }

  // Headless browsers say so; the server's own user-agent check catches most other bots.
  const is_bot = () => {
    const w = window
    if (w.callPhantom || w._phantom || w.phantom) return 150
    if (w.__nightmare) return 151
    if (document.__selenium_unwrapped || document.__webdriver_evaluate || document.__driver_evaluate) return 152
    if (navigator.webdriver) return 153
    return 0
  }

  // Why this page view should not be counted, or false.
  gc.filter = () => {
    if (document.visibilityState === 'prerender' || document.prerendering) return 'visibilityState'
    if (!gc.allow_frame && window.self !== window.top) return 'frame'
    if (!gc.allow_local && LOCAL.test(location.hostname)) return 'localhost'
    if (!gc.allow_local && location.protocol === 'file:') return 'localfile'
    try {
      if (localStorage.getItem('skipgc') === 't') return 'disabled with #toggle-goatcounter'
    } catch (err) {} // storage can be off (sandboxed frames, privacy settings): count as usual
    return false
  }

  // The /count URL for a hit, or undefined when the path callback returned null or there is no endpoint.
  gc.url = (vars) => {
    vars = vars || {}
    const data = {
      p: pick(vars, 'path', get_path),
      r: pick(vars, 'referrer', () => document.referrer),
      t: pick(vars, 'title', () => document.title),
      e: !!(vars.event || gc.event),
      s: screen.width,
      b: is_bot(),
      q: location.search,
      rnd: Math.random().toString(36).slice(2, 7), // browsers don't always honour Cache-Control: no-store
    }
    if (data.p === null) return
    const endpoint = (script && script.dataset.goatcounter) || gc.endpoint
    if (!endpoint) return warn('no endpoint: set data-goatcounter="https://.../count" on the script tag')
    // Empty values, false and b=0 are left out: the server's defaults are the same and the URL stays short.
    const query = Object.entries(data)
      .filter(([, v]) => v !== '' && v !== null && v !== undefined && v !== false && v !== 0)
      .map(([k, v]) => encodeURIComponent(k) + '=' + encodeURIComponent(v))
    return endpoint + '?' + query.join('&')
  }

  gc.count = (vars) => {
    const why = gc.filter()
    if (why) return warn('not counting because of: ' + why)
    const url = gc.url(vars)
    if (!url) return warn('not counting because path callback returned null')
    // A beacon (a POST with the fields in the query string) outlives the page, so a click on a link that
    // leaves is still counted. It returns false when it can't be queued, e.g. blocked by a CSP: use an image.
    if (navigator.sendBeacon && navigator.sendBeacon(url)) return
    const img = document.createElement('img')
    img.src = url
    img.alt = ''
    img.setAttribute('aria-hidden', 'true')
    img.style.cssText = 'position:absolute;bottom:0;width:1px;height:1px'
    img.addEventListener('load', () => img.remove())
    img.addEventListener('error', () => img.remove())
    ;(document.body || document.documentElement).appendChild(img)
  }

  // A parameter of the page's query string (name matched case-insensitively), decoded, or undefined.
  // GoatCounter returns it still URL-encoded, which count() would then encode a second time.
  gc.get_query = (name) => {
    for (const [k, v] of new URLSearchParams(location.search)) if (k.toLowerCase() === name.toLowerCase()) return v
  }

  // Clicks on elements with data-goatcounter-click (and data-goatcounter-title, -referrer) are events. One
  // listener on the document, in the capture phase: it also sees elements added later, and clicks whose
  // handlers stop propagation. auxclick is the middle button (a link opened in a new tab), not the right one.
  const on_click = (e) => {
    if (e.type === 'auxclick' && e.button !== 1) return
    const el = e.target.closest && e.target.closest('[data-goatcounter-click]')
    if (!el) return
    gc.count({
      event: true,
      path: el.dataset.goatcounterClick || el.name || el.id || '',
      title: el.dataset.goatcounterTitle || el.title || (el.textContent || '').trim().slice(0, 200),
      referrer: el.dataset.goatcounterReferrer || '',
    })
  }
  let bound = false
  gc.bind_events = () => {
    if (bound) return
    bound = true
    document.addEventListener('click', on_click, true)
    document.addEventListener('auxclick', on_click, true)
  }

  // example.com/#toggle-goatcounter stops (or restarts) counting your own visits in this browser.
  if (location.hash === '#toggle-goatcounter') {
    try {
      const off = localStorage.getItem('skipgc') === 't'
      if (off) localStorage.removeItem('skipgc')
      else localStorage.setItem('skipgc', 't')
      alert('GoatCounter tracking is now ' + (off ? 'ENABLED' : 'DISABLED') + ' in this browser.')
    } catch (err) {}
  }

  const on_load = () => {
    if (!gc.no_onload) {
      // A page prerendered or opened in a background tab is counted once it is shown, if ever (GoatCounter #487).
      const shown = () => document.visibilityState === 'visible' && !document.prerendering
      if (shown()) gc.count()
      else {
        const once = () => {
          if (!shown()) return
          document.removeEventListener('visibilitychange', once)
          document.removeEventListener('prerenderingchange', once)
          gc.count()
        }
        document.addEventListener('visibilitychange', once)
        document.addEventListener('prerenderingchange', once)
      }
    }
    if (!gc.no_events) gc.bind_events()
  }
  if (document.body) on_load()
  else document.addEventListener('DOMContentLoaded', on_load)
})()
