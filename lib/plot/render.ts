// Renders a Vega-Lite chart to an SVG string (headless Vega, no browser and no canvas) and, when the file
// name asks for it, to PNG through resvg.
import { writeFile } from 'node:fs/promises';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

export async function toSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Writes `spec` to `file`: PNG when the name ends in .png (2x scale), else SVG. */
export async function writeChart(spec: TopLevelSpec, file: string): Promise<void> {
  const svg = await toSvg(spec);
  if (/\.png$/i.test(file)) {
    const png = new Resvg(svg, { fitTo: { mode: 'zoom', value: 2 }, background: 'white', font: { loadSystemFonts: true } }).render().asPng();
    await writeFile(file, png);
  } else {
    await writeFile(file, svg);
  }
}
