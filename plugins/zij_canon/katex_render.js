// Render LaTeX with KaTeX for the zij Canon, once per build.
// stdin:  JSON [{"key": str, "latex": str, "display": bool}, ...]
// stdout: JSON {"key": {"html": str} | {"error": str}, ...}
// Usage: node katex_render.js /path/to/node_modules/katex
"use strict";
const katex = require(process.argv[2] || "katex");

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const out = {};
  for (const item of JSON.parse(input)) {
    try {
      out[item.key] = {
        html: katex.renderToString(item.latex, {
          displayMode: item.display,
          throwOnError: true,
          strict: "error",
          trust: false,
          output: "htmlAndMathml",
        }),
      };
    } catch (err) {
      out[item.key] = { error: String(err.message || err) };
    }
  }
  process.stdout.write(JSON.stringify(out));
});
