import { defineConfig } from 'vitest/config';

// Unit tests of the panel's model and helpers. The model tests talk to a real
// jupyter-envs server that src/__tests__/server-setup.ts starts (ui-tests/launch_server.py).
export default defineConfig({
  test: {
    environment: 'jsdom',
    include: ['src/__tests__/**/*.spec.ts'],
    globalSetup: ['src/__tests__/server-setup.ts'],
    setupFiles: ['src/__tests__/dom-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    server: { deps: { inline: [/@jupyterlab\//, /@jupyter\//, /@lumino\//] } }
  }
});
