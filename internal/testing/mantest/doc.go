// Package mantest checks man pages as their readers' tools see them: Lint
// formats a page with groff, all warnings on, as man(1) does, and checks
// it with mandoc's linter; either saying anything fails the test.
//
// groff comes with man-db (groff-base) and mandoc is a small package;
// .ci/run installs both. Without one of them the check it makes is left
// out with a note in the test's log, or, when the environment variable CI
// is "true", the test fails.
package mantest
