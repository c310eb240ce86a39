#!/usr/bin/env node
// Builds and runs the C++ tests of the core (doctest), in build-tests/, or with --sanitize an AddressSanitizer +
// UndefinedBehaviorSanitizer build in build-sanitize/.
//
// They need cmake and doctest (Debian: apt-get install cmake doctest-dev). Where those are missing the tests are
// skipped with a message, so `npm test` still runs the rest on a fresh machine; CI sets
// TESSERA_REQUIRE_NATIVE_TESTS=1, which turns the skip into a failure.
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const sanitize = process.argv.includes('--sanitize');
const required = process.env.TESSERA_REQUIRE_NATIVE_TESTS === '1';
const buildDir = path.join(root, sanitize ? 'build-sanitize' : 'build-tests');
const what = sanitize ? 'C++ core tests (ASan + UBSan)' : 'C++ core tests';

function run(cmd, args, extraEnv = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf8', env: { ...process.env, ...extraEnv } });
  if (r.stderr) process.stderr.write(r.stderr);
  return r;
}

function skipOrFail(reason) {
  const fix = 'install cmake and doctest (Debian: apt-get install cmake doctest-dev)';
  if (required) {
    console.error(`${what} FAILED to build: ${reason}`);
    process.exit(1);
  }
  console.log(`\n*** ${what} SKIPPED: ${reason}; ${fix} to run them ***\n`);
  process.exit(0);
}

if (spawnSync('cmake', ['--version'], { stdio: 'ignore' }).error) skipOrFail('cmake not found');
const configure = run('cmake', [
  '-S', root, '-B', buildDir, '-DTESSERA_TESTS=ON',
  `-DTESSERA_SANITIZE=${sanitize ? 'ON' : 'OFF'}`,
  `-DCMAKE_BUILD_TYPE=${sanitize ? 'Debug' : 'Release'}`,
]);
if (configure.status !== 0) {
  skipOrFail(/DOCTEST_INCLUDE_DIR/.test(configure.stderr ?? '') ? 'doctest/doctest.h not found' : 'cmake configure failed');
}
const build = run('cmake', ['--build', buildDir, '--parallel', String(os.availableParallelism())]);
if (build.status !== 0) {
  console.error(`${what}: build failed`);
  process.exit(1);
}
const test = run(path.join(buildDir, 'tessera_core_tests'), ['--no-intro'], {
  UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
  ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=1',
});
process.exit(test.status ?? 1);
