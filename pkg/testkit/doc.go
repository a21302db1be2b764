// Package testkit is what every module's tests share to run against the real
// thing: a free port, the repository root, a Redis key prefix or a whole Redis
// database per test (cleaned up), the pinned mediamtx, ffmpeg, Chromium and
// GStreamer elements, the shared test clip, and a log buffer.
//
// A missing real component is never silent. Under CI=true it fails the test;
// elsewhere the test is skipped with a message saying how to install it
// (see Require). PostgreSQL schemas are in the sub-package postgres, the
// process harness that brings the whole platform up (used by the end-to-end
// suite and the benchmarks) in harness.
//
// The kit is its own module so that the production modules never depend on
// it, or on pgx and testify through it, outside their tests (adr/0009).
package testkit
