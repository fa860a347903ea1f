/* The "Burned areas" page: region outlines, a product's burn-date/confidence tiles and fire events,
   a date slider over the region's products, event details with daily growth, and the cube-coverage
   calendar linked to the Airflow DAG runs.  Every URL is relative to the page (it is mounted under
   Airflow's api-server or served alone by `banet-ops serve`). */
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("banet-config").textContent);
  const base = new URL(".", window.location.href);
  const url = (path) => new URL(path, base).toString();
  const airflowRoot = config.in_airflow ? new URL("..", base).toString().replace(/\/$/, "") : (config.airflow_url || "");
  const RAMPS = {
    burn_date: { name: "banet_burn", css: "#0d0887,#7e03a8,#cc4778,#f89540,#f0f921" },
    confidence: { name: "viridis", css: "#440154,#3b528b,#21918c,#5ec962,#fde725" },
  };
  const $ = (id) => document.getElementById(id);
  const state = { regions: [], products: [], current: null, events: [] };
  window.banetMap = { state, ready: false };

  function setStatus(text) { $("status").textContent = text; }

  async function getJSON(path, options) {
    const resp = await fetch(path, Object.assign({ credentials: "same-origin" }, options || {}));
    if (!resp.ok) throw new Error(`${path}: HTTP ${resp.status}`);
    return resp.json();
  }

  const map = new maplibregl.Map({
    container: "map",
    style: { version: 8, sources: {}, layers: [{ id: "bg", type: "background", paint: { "background-color": "#eef0f3" } }] },
    center: [-8.0, 40.0], zoom: 7, attributionControl: false,
  });
  window.banetMap.map = map;
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }));
  map.addControl(new maplibregl.ScaleControl({ unit: "metric" }));

  function rasterTiles(asset, p) {
    const rescale = asset === "burn_date" ? p.burn_date_rescale.join(",") : "0,1";
    const query = new URLSearchParams({ run_id: p.run_id, asset, colormap_name: RAMPS[asset].name, rescale });
    return [base.toString() + "tiles/tiles/WebMercatorQuad/{z}/{x}/{y}.png?" + query.toString()];
  }

  function setRaster(asset, p, visible) {
    const id = `raster-${asset}`;
    if (map.getLayer(id)) map.removeLayer(id);
    if (map.getSource(id)) map.removeSource(id);
    if (!p || !p.assets.includes(asset)) return;
    const region = state.regions.find((r) => r.name === p.region);
    map.addSource(id, { type: "raster", tiles: rasterTiles(asset, p), tileSize: 256, minzoom: 4, maxzoom: 14, bounds: region ? region.bbox : undefined });
    map.addLayer({ id, type: "raster", source: id, paint: { "raster-opacity": 0.85, "raster-resampling": "nearest" },
                   layout: { visibility: visible ? "visible" : "none" } }, "regions-line");
  }

  function legend(p) {
    const parts = [];
    if ($("show-burn").checked && p) parts.push(`<div>Burn date</div><div class="ramp" style="background:linear-gradient(to right,${RAMPS.burn_date.css})"></div><div class="ends"><span>${p.window[0]}</span><span>${p.window[1]}</span></div>`);
    if ($("show-conf").checked && p) parts.push(`<div>Confidence</div><div class="ramp" style="background:linear-gradient(to right,${RAMPS.confidence.css})"></div><div class="ends"><span>0</span><span>1</span></div>`);
    $("legend").innerHTML = parts.join("");
  }

  async function loadRegions() {
    const outlines = await getJSON(url("ogc/collections/regions/items?limit=1000&f=geojson"));
    map.addSource("regions", { type: "geojson", data: outlines });
    map.addLayer({ id: "regions-line", type: "line", source: "regions", paint: { "line-color": "#1f2937", "line-width": 1.5, "line-dasharray": [3, 2] } });
    map.addSource("events", { type: "geojson", data: { type: "FeatureCollection", features: [] } });  // numeric feature ids: feature-state works
    map.addLayer({ id: "events-fill", type: "fill", source: "events", paint: { "fill-color": "#dc2626", "fill-opacity": ["case", ["boolean", ["feature-state", "selected"], false], 0.3, 0.1] } });
    map.addLayer({ id: "events-line", type: "line", source: "events", paint: { "line-color": "#991b1b", "line-width": ["case", ["boolean", ["feature-state", "selected"], false], 3, 1.5] } });
    state.regions = await getJSON(url("api/regions"));
    $("region").innerHTML = state.regions.map((r) => `<option>${r.name}</option>`).join("");
  }

  let regionRequest = 0;
  async function selectRegion() {
    const name = $("region").value;
    const region = state.regions.find((r) => r.name === name);
    if (!region) return;
    map.fitBounds([[region.bbox[0], region.bbox[1]], [region.bbox[2], region.bbox[3]]], { padding: 30, duration: 0 });
    const ticket = ++regionRequest;
    const all = await getJSON(url(`api/products?region=${encodeURIComponent(name)}`));
    if (ticket !== regionRequest) return;
    state.products = all.filter((p) => p.product === $("product").value);
    const slider = $("date");
    slider.max = Math.max(0, state.products.length - 1);
    slider.value = slider.max;
    slider.disabled = state.products.length < 2;
    $("date-range").textContent = state.products.length ? `${state.products.length} products, ${state.products[0].target_date} … ${state.products[state.products.length - 1].target_date}` : "no product yet";
    await selectProduct();
    calendar(name).catch((e) => setStatus(`calendar: ${e.message}`));
  }

  let productRequest = 0;  // a newer choice wins over an older request still in flight
  async function selectProduct() {
    const ticket = ++productRequest;
    const p = state.products[Number($("date").value)] || null;
    state.current = p;
    $("date-label").textContent = p ? p.target_date : "–";
    setRaster("confidence", p, $("show-conf").checked);
    setRaster("burn_date", p, $("show-burn").checked);
    legend(p);
    $("event-details").hidden = true;
    const fc = p ? await getJSON(url(`api/products/${p.run_id}/events`)) : { type: "FeatureCollection", features: [] };
    if (ticket !== productRequest) return;
    state.events = fc.features;
    map.getSource("events").setData(fc);
    $("summary").textContent = p ? `${p.product} ${p.target_date}: window ${p.window[0]} … ${p.window[1]}, ${fc.features.length} events, ${(p.burned_area_km2 || 0).toFixed(1)} km² burned (run ${p.run_id})` : "";
    $("events").innerHTML = fc.features.map((f) => `<li class="event" data-id="${f.id}">${f.properties.first_burn_date} → ${f.properties.last_burn_date}, ${f.properties.area_km2.toFixed(1)} km²</li>`).join("");
    map.once("idle", countDrawn);
  }

  function countDrawn() {
    const drawn = new Set(map.queryRenderedFeatures({ layers: ["events-fill"] }).map((f) => f.id));
    $("event-count").textContent = `(${drawn.size} of ${state.events.length} on the map)`;
    $("event-count").dataset.count = String(drawn.size);
    window.banetMap.ready = true;
  }

  let selectedId = null;
  async function showEvent(id) {
    const f = state.events.find((e) => String(e.id) === String(id));
    if (!f) return;
    if (selectedId !== null) map.setFeatureState({ source: "events", id: selectedId }, { selected: false });
    selectedId = f.id;
    map.setFeatureState({ source: "events", id: f.id }, { selected: true });
    document.querySelectorAll("#events li").forEach((li) => li.classList.toggle("selected", li.dataset.id === String(f.id)));
    const q = f.properties;
    const days = (new Date(q.last_burn_date) - new Date(q.first_burn_date)) / 86400000 + 1;
    const box = $("event-details");
    box.hidden = false;
    box.innerHTML = `<b>Fire event ${f.id}</b><table>
      <tr><td>Burn dates</td><td>${q.first_burn_date} → ${q.last_burn_date} (${days} d)</td></tr>
      <tr><td>Area</td><td>${q.area_km2.toFixed(2)} km² (${q.n_cells} cells)</td></tr>
      <tr><td>Confidence</td><td>${q.mean_confidence == null ? "–" : q.mean_confidence.toFixed(2)}</td></tr>
      <tr><td>Run</td><td>${q.run_id}${q.run_id === (state.current && state.current.run_id) ? "" : " (last changed it)"}; shown: ${state.current ? `${state.current.product} ${state.current.target_date}` : ""}</td></tr></table>
      <div class="muted">Daily growth</div><div class="growth" id="growth"></div><div class="muted" id="growth-text"></div>`;
    const growth = await getJSON(url(`api/events/${f.id}/growth`));
    const top = Math.max(...growth.map((g) => g.area_km2), 1e-9);
    $("growth").innerHTML = growth.map((g) => `<span title="${g.date}: +${g.area_km2.toFixed(2)} km² (total ${g.total_km2.toFixed(1)})" style="height:${(100 * g.area_km2 / top).toFixed(0)}%"></span>`).join("");
    $("growth-text").textContent = growth.length
      ? `${growth[0].date} … ${growth[growth.length - 1].date}: ${growth.length} burn days, largest +${top.toFixed(1)} km²/day`
      : "no cells";
  }

  function runLink(dag, runsByDay, day) {
    const run = runsByDay[day];
    const path = run ? `/dags/${dag}/runs/${encodeURIComponent(run)}` : `/dags/${dag}/runs`;
    return airflowRoot ? airflowRoot + path : null;
  }

  async function dagRunsByDay(dag) {
    if (!config.in_airflow) return {};
    try {
      const body = await getJSON(`${airflowRoot}/api/v2/dags/${dag}/dagRuns?limit=1000&order_by=-logical_date`);
      const out = {};
      for (const r of body.dag_runs || []) {
        const day = (r.data_interval_start || r.logical_date || "").slice(0, 10);
        if (day && !out[day]) out[day] = r.dag_run_id;
      }
      return out;
    } catch (e) { return {}; }
  }

  async function calendar(region) {
    const cal = await getJSON(url(`api/regions/${encodeURIComponent(region)}/calendar`));
    const runs = await dagRunsByDay(cal.dags.ingest);
    const byDay = Object.fromEntries(cal.days.map((d) => [d.day, d]));
    const box = $("calendar");
    if (!cal.days.length) { box.textContent = "no cube day yet"; return; }
    const first = new Date(cal.days[0].day + "T00:00:00Z"), last = new Date(cal.days[cal.days.length - 1].day + "T00:00:00Z");
    let html = "";
    for (let m = new Date(Date.UTC(first.getUTCFullYear(), first.getUTCMonth(), 1)); m <= last; m = new Date(Date.UTC(m.getUTCFullYear(), m.getUTCMonth() + 1, 1))) {
      html += `<div class="month"><div>${m.toISOString().slice(0, 7)}</div><div class="days">`;
      const pad = (m.getUTCDay() + 6) % 7;
      html += "<span></span>".repeat(pad);
      for (let d = new Date(m); d.getUTCMonth() === m.getUTCMonth(); d = new Date(d.getTime() + 86400000)) {
        const key = d.toISOString().slice(0, 10);
        const rec = byDay[key];
        const status = rec ? rec.status : (d >= first && d <= last ? "missing" : "");
        const title = rec ? `${key}: ${rec.status}, ${(100 * rec.valid_fraction).toFixed(0)}% valid` : `${key}: ${status || "outside the cube"}`;
        const href = status ? runLink(cal.dags.ingest, runs, key) : null;
        html += href ? `<a class="day ${status}" data-day="${key}" href="${href}" target="_top" title="${title} — DAG runs">${d.getUTCDate()}</a>`
                     : `<span class="day ${status}" data-day="${key}" title="${title}">${d.getUTCDate()}</span>`;
      }
      html += "</div></div>";
    }
    box.innerHTML = html;
  }

  map.on("click", "events-fill", (e) => { if (e.features.length) showEvent(e.features[0].id); });
  map.on("mouseenter", "events-fill", () => { map.getCanvas().style.cursor = "pointer"; });
  map.on("mouseleave", "events-fill", () => { map.getCanvas().style.cursor = ""; });
  $("events").addEventListener("click", (e) => { const li = e.target.closest("li"); if (li) showEvent(li.dataset.id); });
  $("region").addEventListener("change", () => selectRegion().catch((e) => setStatus(e.message)));
  $("product").addEventListener("change", () => selectRegion().catch((e) => setStatus(e.message)));
  $("date").addEventListener("input", () => selectProduct().catch((e) => setStatus(e.message)));
  $("show-burn").addEventListener("change", () => { if (map.getLayer("raster-burn_date")) map.setLayoutProperty("raster-burn_date", "visibility", $("show-burn").checked ? "visible" : "none"); legend(state.current); });
  $("show-conf").addEventListener("change", () => { setRaster("confidence", state.current, $("show-conf").checked); legend(state.current); });
  $("show-events").addEventListener("change", () => ["events-fill", "events-line"].forEach((id) => map.setLayoutProperty(id, "visibility", $("show-events").checked ? "visible" : "none")));

  map.on("load", () => {
    loadRegions().then(selectRegion).then(() => setStatus("")).catch((e) => { setStatus(`could not load the map data: ${e.message}`); window.banetMap.error = e.message; });
  });
})();
