// Builds the UI into dist/: one script, one stylesheet and index.html, all
// embedded in the strata binary by the Go package web. Run with `make ui`.
import * as esbuild from "esbuild";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";

rmSync("dist", { recursive: true, force: true });
mkdirSync("dist");
await esbuild.build({
  entryPoints: { app: "src/main.ts" },
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020"],
  outdir: "dist",
  legalComments: "eof",
  logLevel: "info",
});
copyFileSync("src/index.html", "dist/index.html");
