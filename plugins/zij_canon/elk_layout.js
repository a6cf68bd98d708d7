// Lay out the site's lineage graphs with the Eclipse Layout Kernel (elkjs), once per build.
// stdin:  JSON [{"key": str, "graph": ELK JSON graph (children with width/height, edges)}, ...]
// stdout: JSON {"key": {"width", "height", "nodes": {id: [x, y]}, "edges": {id: [[x, y], ...]}} | {"error": str}}
// Usage: node elk_layout.js /path/to/node_modules/elkjs
// Graphs are laid out one after another so that the output does not depend on timing.
"use strict";
const path = require("path");
const ELK = require(path.join(process.argv[2] || "elkjs", "lib", "elk.bundled.js"));

const elk = new ELK();
const round = (v) => Math.round(v);

function summary(laid) {
  const nodes = {};
  for (const n of laid.children || []) nodes[n.id] = [round(n.x), round(n.y)];
  const edges = {};
  for (const e of laid.edges || []) {
    const points = [];
    for (const s of e.sections || []) {
      points.push([round(s.startPoint.x), round(s.startPoint.y)]);
      for (const b of s.bendPoints || []) points.push([round(b.x), round(b.y)]);
      points.push([round(s.endPoint.x), round(s.endPoint.y)]);
    }
    edges[e.id] = points;
  }
  return { width: round(laid.width), height: round(laid.height), nodes, edges };
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", async () => {
  const out = {};
  for (const item of JSON.parse(input)) {
    try {
      out[item.key] = summary(await elk.layout(item.graph));
    } catch (err) {
      out[item.key] = { error: String((err && err.message) || err) };
    }
  }
  process.stdout.write(JSON.stringify(out));
});
