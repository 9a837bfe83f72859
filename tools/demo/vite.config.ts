import { defineConfig } from 'vite';
import { demoAssetsPlugin } from './src/assets.js';

// Static multi-page build: index.html (the demo) and parity.html (head outputs against a PyTorch dump).
export default defineConfig({
  base: './',
  plugins: [demoAssetsPlugin()],
  build: {
    target: 'es2022',
    chunkSizeWarningLimit: 4096,
    rollupOptions: {
      input: { main: 'index.html', parity: 'parity.html' },
      output: {
        // TF.js apart from our code (webgpu loads on demand only), so the sizes read per part
        manualChunks(id) {
          if (id.includes('/@tensorflow/tfjs-backend-webgpu/')) return 'tfjs-webgpu';
          if (id.includes('/node_modules/@tensorflow/')) return 'tfjs';
          return undefined;
        },
      },
    },
  },
});
