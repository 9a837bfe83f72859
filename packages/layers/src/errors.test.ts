import { closeNames } from '@effdet/layers';

describe('closeNames', () => {
  const names = [
    'effdet_test_efficientnet',
    'efficientnet_b0',
    'efficientnet_b1',
    'efficientnet_b2',
    'efficientnet_lite0',
    'test_efficientnet',
    'tf_efficientnet_b0',
  ];

  it('ranks candidates by edit distance, then alphabetically, at most `max`', () => {
    expect(closeNames('efficientnet_b9', names)).toEqual([
      'efficientnet_b0',
      'efficientnet_b1',
      'efficientnet_b2',
      'tf_efficientnet_b0',
      'efficientnet_lite0',
    ]);
    expect(closeNames('efficientnet_b9', names, 2)).toEqual(['efficientnet_b0', 'efficientnet_b1']);
    expect(closeNames('test_efficientnet_gn', names)[0]).toBe('test_efficientnet');
  });

  it('leaves out names too far away', () => {
    expect(closeNames('resnet34', names)).toEqual([]);
    expect(closeNames('', names)).toEqual([]);
  });
});
