/** `rlhf backends`: every backend, whether it starts here, why not, and which one `auto` takes. */
import { OptSpecs, ParsedOpts } from '../args';
import { probeBackends } from '../../engine/backends/backend';

export const BACKENDS_OPTS: OptSpecs = {
  json: { type: 'boolean', help: 'one JSON object on stdout' },
  help: { type: 'boolean', help: 'show this help' },
};

export async function backendsCommand(o: ParsedOpts): Promise<number> {
  const { probes, auto } = await probeBackends();
  if (o.json) {
    process.stdout.write(
      JSON.stringify({
        auto: auto ?? null,
        backends: probes.map((p) => ({
          name: p.name,
          available: p.available,
          ...(p.available ? { detail: p.detail } : { why: p.detail }),
          ...(p.autoSkips ? { auto_skips: p.autoSkips } : {}),
          ...(p.adapter
            ? {
                adapter: { vendor: p.adapter.vendor, architecture: p.adapter.architecture, description: p.adapter.description, device: p.adapter.device, software: p.adapter.software },
                limits: { max_buffer_size: p.adapter.limits.maxBufferSize, max_storage_buffer_binding_size: p.adapter.limits.maxStorageBufferBindingSize, max_compute_workgroup_storage_size: p.adapter.limits.maxComputeWorkgroupStorageSize, max_compute_invocations_per_workgroup: p.adapter.limits.maxComputeInvocationsPerWorkgroup },
              }
            : {}),
        })),
      }) + '\n',
    );
    return 0;
  }
  const mb = (n: number) => `${Math.round(n / 2 ** 20)} MiB`;
  for (const p of probes) {
    const mark = p.available ? (p.name === auto ? '*' : '+') : '-';
    process.stdout.write(`${mark} ${p.name.padEnd(7)} ${p.detail}\n`);
    if (p.adapter) process.stdout.write(`          limits: buffer ${mb(p.adapter.limits.maxBufferSize)}, storage binding ${mb(p.adapter.limits.maxStorageBufferBindingSize)}\n`);
    if (p.autoSkips) process.stdout.write(`          auto passes over it: ${p.autoSkips}\n`);
  }
  process.stdout.write(auto ? `auto takes ${auto} (*)\n` : 'no backend starts here\n');
  return 0;
}
