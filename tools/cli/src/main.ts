#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { listModels } from '@effdet/efficientnet';
import { type BackendChoice, useBackend } from './backend.js';
import { formatInfo, modelInfo } from './info.js';

const USAGE = `effdet <command> [options]

Commands:
  info <model>        build a backbone; print its features, shapes and parameter count
                      --size N  --output-stride 8|16|32  --feature-location bottleneck|expansion
                      --no-run (shapes only)  --json
  models [pattern]    list registered models (wildcards: 'tf_efficientnet_b*'); --pretrained

Common options:
  --backend wasm|cpu|tensorflow   (default wasm; tensorflow needs @tensorflow/tfjs-node installed)
  --help
`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      size: { type: 'string' },
      'output-stride': { type: 'string' },
      'feature-location': { type: 'string' },
      'no-run': { type: 'boolean' },
      json: { type: 'boolean' },
      pretrained: { type: 'boolean' },
      backend: { type: 'string', default: 'wasm' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    process.stdout.write(USAGE);
    return command || values.help ? 0 : 1;
  }
  switch (command) {
    case 'models': {
      process.stdout.write(`${listModels(rest[0], { pretrained: values.pretrained }).join('\n')}\n`);
      return 0;
    }
    case 'info': {
      const model = rest[0];
      if (!model) throw new Error('effdet info: a model name is required (see `effdet models`)');
      const backend = await useBackend(values.backend as BackendChoice);
      const size = values.size ? Number.parseInt(values.size, 10) : undefined;
      if (size !== undefined && !(size > 0))
        throw new Error(`effdet info: --size must be a positive integer, got '${values.size}'`);
      const os = values['output-stride'] ? Number.parseInt(values['output-stride'], 10) : undefined;
      const r = modelInfo({
        model,
        size,
        outputStride: os as 8 | 16 | 32 | undefined,
        featureLocation: values['feature-location'] as 'bottleneck' | 'expansion' | undefined,
        run: !values['no-run'],
      });
      process.stdout.write(
        values.json
          ? `${JSON.stringify({ backend, ...r }, null, 2)}\n`
          : `${formatInfo(r)}\nbackend: ${backend}\n`,
      );
      return 0;
    }
    default:
      throw new Error(`effdet: unknown command '${command}'; expected one of info, models (see --help)`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
