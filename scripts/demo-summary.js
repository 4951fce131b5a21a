// Prints the SNS messages aws-sim received (JSON on stdin, from /_sim/sns/messages) as a short,
// readable summary: one block per notification, with the image, counts, the worst findings, the
// deploys that triggered it and the images of those deploys that were not scanned.
'use strict';

let input = '';
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', () => {
  const { messages } = JSON.parse(input);
  for (const m of messages) {
    let body;
    try {
      body = JSON.parse(m.message);
    } catch {
      console.log(`  ${m.subject}\n    (body is not JSON)`);
      continue;
    }
    console.log(`\n  ${m.subject}`);
    console.log(`    image     ${body.image}${body.digest ? `  (${body.digest.slice(0, 19)}...)` : ''}`);
    if (body.summary) {
      const c = body.summary.counts;
      console.log(`    findings  ${c.critical} critical, ${c.high} high, ${c.medium} medium, ${c.low} low, ${c.info} info` +
        ` (${body.summary.patchable} patchable)`);
      for (const f of (body.findings || []).slice(0, 3)) {
        const fix = f.fixed_version ? ` -> fix ${f.fixed_version}` : '';
        console.log(`      [sev ${f.severity}] ${f.title} (${(f.cves || []).join(', ') || 'no CVE'}) ${f.package || ''}${fix}`);
      }
    }
    if (body.failure) console.log(`    failure   ${body.failure.reason}: ${body.failure.detail || ''}`);
    for (const d of body.deploys || []) {
      const where = [d.cluster, d.service].filter(Boolean).map((s) => s.split('/').pop()).join('/');
      console.log(`    deployed  ${d.event_name} in ${d.event_account}/${d.event_region}${where ? ' ' + where : ''} by ${d.principal || 'unknown'}`);
    }
    for (const n of body.not_scanned || []) {
      console.log(`    skipped   ${n.image || '(no image)'}: ${n.reason}${n.detail ? ' - ' + n.detail : ''}`);
    }
  }
  console.log(`\n  ${messages.length} notification(s).`);
});
