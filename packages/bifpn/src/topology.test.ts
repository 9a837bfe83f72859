import { bifpnConfig, getFpnConfig, listFpnNames, panConfig, qufpnConfig } from '@effdet/bifpn';

const strip = (nodes: { featLevel: number; inputsOffsets: number[] }[]) =>
  nodes.map((n) => [n.featLevel, n.inputsOffsets] as const);

describe('fpn topologies (golden node lists from google/automl fpn_configs_test.py)', () => {
  it('bifpn levels 3..7', () => {
    expect(strip(bifpnConfig(3, 7).nodes)).toEqual([
      [6, [3, 4]],
      [5, [2, 5]],
      [4, [1, 6]],
      [3, [0, 7]],
      [4, [1, 7, 8]],
      [5, [2, 6, 9]],
      [6, [3, 5, 10]],
      [7, [4, 11]],
    ]);
  });

  it('bifpn levels 2..7', () => {
    expect(strip(bifpnConfig(2, 7).nodes)).toEqual([
      [6, [4, 5]],
      [5, [3, 6]],
      [4, [2, 7]],
      [3, [1, 8]],
      [2, [0, 9]],
      [3, [1, 9, 10]],
      [4, [2, 8, 11]],
      [5, [3, 7, 12]],
      [6, [4, 6, 13]],
      [7, [5, 14]],
    ]);
  });

  it('qufpn levels 3..7: automl paths, quad-add path in increasing level order (effdet)', () => {
    const nodes = qufpnConfig(3, 7).nodes;
    expect(strip(nodes.slice(0, 16))).toEqual([
      [6, [3, 4]],
      [5, [2, 5]],
      [4, [1, 6]],
      [3, [0, 7]],
      [4, [1, 7, 8]],
      [5, [2, 6, 9]],
      [6, [3, 5, 10]],
      [7, [4, 11]],
      [4, [1, 0]],
      [5, [2, 13]],
      [6, [3, 14]],
      [7, [4, 15]],
      [6, [3, 15, 16]],
      [5, [2, 14, 17]],
      [4, [1, 13, 18]],
      [3, [0, 19]],
    ]);
    // automl lists the quad-add nodes 7..3; effdet reverses them so outputs come out as P3..P7.
    expect(strip(nodes.slice(16))).toEqual([
      [3, [8, 20]],
      [4, [9, 19]],
      [5, [10, 18]],
      [6, [11, 17]],
      [7, [12, 16]],
    ]);
    expect(nodes.every((n) => n.weightMethod === 'fastattn')).toBe(true);
    expect(
      qufpnConfig(3, 7, 'sum')
        .nodes.slice(-5)
        .every((n) => n.weightMethod === 'fastattn'),
    ).toBe(true);
  });

  it('pan levels 3..5', () => {
    expect(strip(panConfig(3, 5).nodes)).toEqual([
      [5, [2]],
      [4, [1, 3]],
      [3, [0, 4]],
      [3, [5]],
      [4, [4, 6]],
      [5, [3, 7]],
    ]);
  });

  it('names and weight methods; d7x levels 3..8', () => {
    expect(listFpnNames()).toEqual([
      'bifpn_sum',
      'bifpn_attn',
      'bifpn_fa',
      'pan_sum',
      'pan_fa',
      'qufpn_sum',
      'qufpn_fa',
    ]);
    expect(getFpnConfig('bifpn_sum').nodes.every((n) => n.weightMethod === 'sum')).toBe(true);
    expect(getFpnConfig(null).nodes[0].weightMethod).toBe('fastattn');
    const d7x = getFpnConfig('bifpn_sum', 3, 8).nodes;
    expect(d7x).toHaveLength(10);
    expect(d7x.slice(-6).map((n) => n.featLevel)).toEqual([3, 4, 5, 6, 7, 8]);
    expect(() => getFpnConfig('bifpn_xx')).toThrow(/unknown fpn name 'bifpn_xx'; expected one of bifpn_sum/);
    expect(() => bifpnConfig(5, 5)).toThrow(/1 <= minLevel < maxLevel/);
  });
});
