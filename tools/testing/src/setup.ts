// Jest setup: silence TF.js' "running in Node without tfjs-node" hint and register the backends once.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';

tf.env().set('IS_TEST', true);
