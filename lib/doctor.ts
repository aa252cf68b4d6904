// npx torch-moe doctor: backend() as a checklist, each failed check followed by its fix; a load failure
// is reported (with the loader's own explanation) instead of thrown.
import { backend, type Backend } from './backend.js';
import { platformLine } from './loader/explain.js';
import { loadReport, NativeLoadError } from './native.js';

export interface DoctorReport {
  ok: boolean;
  backend?: Backend;
  /** Each check: what was looked at, whether it is fine, and the fix when not. */
  checks: { name: string; ok: boolean; detail: string; fix?: string }[];
  loadError?: { reason: string; message: string };
}

export function doctor(): DoctorReport {
  let b: Backend;
  try {
    b = backend();
  } catch (err) {
    if (!(err instanceof NativeLoadError)) throw err;
    const search = loadReport().libtorch;
    return {
      ok: false,
      checks: [{ name: 'native addon', ok: false, detail: err.message.split('\n')[0]!, fix: 'see the message below' },
        { name: 'libtorch', ok: !!search.found, detail: search.steps.at(-1) ?? '' }],
      loadError: { reason: err.reason, message: err.message },
    };
  }
  const checks: DoctorReport['checks'] = [
    { name: 'platform', ok: true, detail: b.platform },
    { name: 'native addon', ok: true, detail: `${b.addon.path} (${b.addon.kind}${b.addon.meta ? `, built for libtorch ${b.addon.meta.libtorch} ${b.addon.meta.flavour}` : ''})` },
    { name: 'libtorch', ok: true, detail: `${b.libtorch.version} (${b.libtorch.flavour}) from ${b.libtorch.foundBy}, ${b.libtorch.libDir}` },
    {
      name: 'BLAS', ok: !b.blas.warning, detail: `${b.blas.kind}${b.blas.library ? ` (${b.blas.library})` : ' (inside libtorch)'}`,
      fix: b.blas.warning,
    },
    {
      name: 'CUDA', ok: true,  // a CPU machine is a fine place to run; the reason is information, not a failure
      detail: b.cuda.available ? `available, ${b.cuda.devices} device(s)` : `not available: ${b.cuda.reason}`,
    },
    { name: 'CUDA variant', ok: true, detail: b.addon.cudaVariant },
    { name: 'threads', ok: true, detail: `${b.threads.intraOp} intra-op (torch-moe's compute thread), ${b.threads.interOp} inter-op` },
  ];
  return { ok: checks.every((c) => c.ok), backend: b, checks };
}

export function formatDoctor(r: DoctorReport): string {
  const lines = [`torch-moe doctor (${platformLine()})`];
  for (const c of r.checks) {
    lines.push(`${c.ok ? '✓' : '✗'} ${c.name.padEnd(13)} ${c.detail}`);
    if (!c.ok && c.fix) lines.push(`  fix: ${c.fix}`);
  }
  if (r.backend) lines.push('libtorch search:', ...r.backend.libtorch.search.map((s) => `  ${s}`));
  if (r.loadError) lines.push('', r.loadError.message);
  lines.push('', r.ok ? 'All checks passed.' : 'Some checks failed: see the fixes above.');
  return lines.join('\n');
}
