#!/usr/bin/env bash
# Install the Node tools the HTML report needs (Allure Report 3, pinned in package-lock.json)
# into ./node_modules. Optional: without them every other report (JSON results, compliance
# matrix, gate, pcaps, sequence charts) still works; only the single-file HTML is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v npm >/dev/null 2>&1; then
    echo "install-report-tools: npm not found; skipping the HTML report tools." >&2
    echo "install-report-tools: install Node.js 20+ (with npm) and run this script again to get reports/html/index.html." >&2
    exit 0
fi

echo "install-report-tools: node $(node --version 2>/dev/null || echo '?'), npm $(npm --version)"
npm ci --no-audit --no-fund
echo "install-report-tools: installed $(./node_modules/.bin/allure --version 2>/dev/null | tail -n 1 || echo 'allure')"
