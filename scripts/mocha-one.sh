#!/usr/bin/env bash
# Runs the given test files only: scripts/mocha-one.sh test/integration/x.test.ts
npm run -s build && exec npx mocha --no-config --node-option import=tsx --require test/helpers/setup.ts --timeout 60000 "$@"
