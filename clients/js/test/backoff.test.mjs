// Full-jitter backoff: uniform in [0, min(max, initial·2ⁿ)).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay, DEFAULT_BACKOFF } from '../src/presence-hub-client.js';

test('the ceiling doubles per attempt up to the maximum; the delay is uniform below it', () => {
  const top = () => 0.999999;
  assert.equal(backoffDelay(0, DEFAULT_BACKOFF, top), 999, 'the first retry is within a second');
  assert.equal(backoffDelay(1, DEFAULT_BACKOFF, top), 1999);
  assert.equal(backoffDelay(3, DEFAULT_BACKOFF, top), 7999);
  assert.equal(backoffDelay(10, DEFAULT_BACKOFF, top), 29999, 'capped at maxMs');
  assert.equal(backoffDelay(1000, DEFAULT_BACKOFF, top), 29999, 'no overflow');
  assert.equal(backoffDelay(5, DEFAULT_BACKOFF, () => 0), 0);
  const delays = Array.from({ length: 2000 }, () => backoffDelay(2, { initialMs: 100, maxMs: 10000 }));
  assert.ok(delays.every((d) => d >= 0 && d < 400));
  const mean = delays.reduce((a, b) => a + b, 0) / delays.length;
  assert.ok(mean > 150 && mean < 250, `spread over the range (mean ${mean})`);
});
