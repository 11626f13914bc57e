// Validates the documents of deploy/kubernetes/ whose kinds are CRDs, which
// kubernetes-validate has no schema for, against the schemas that
// @kubernetes-models generates from the CRDs (see package.json).
// tests/deploy.rs runs it: the documents arrive on stdin as a JSON array;
// it prints one line per document and exits 1 when one is refused or of a
// kind it does not know.
import { readFileSync } from 'node:fs';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';

const MODELS = {
  'monitoring.coreos.com/v1 ServiceMonitor': ServiceMonitor,
};

let failed = false;
for (const doc of JSON.parse(readFileSync(0, 'utf8'))) {
  const what = `${doc.apiVersion} ${doc.kind}`;
  const Model = MODELS[what];
  if (!Model) {
    console.log(`ERROR ${what} ${doc.metadata?.name}: no schema here`);
    failed = true;
    continue;
  }
  try {
    new Model(doc).validate();
    console.log(`OK ${what} ${doc.metadata?.name}`);
  } catch (e) {
    console.log(`ERROR ${what} ${doc.metadata?.name}: ${e.message}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
