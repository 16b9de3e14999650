dataset_type = 'KITTIDataset'
data = dict(test=dict(type='KITTIDataset', min_depth=0.001, max_depth=80))
model = dict(
    type='DepthEncoderDecoder',
    backbone=dict(
        type='DinoVisionTransformer',
        final_norm=False,
        output_cls_token=True,
        out_indices=[2, 5, 8, 11]),
    decode_head=dict(
        type='BNHead',
        min_depth=0.001,
        max_depth=80,
        classify=True,
        n_bins=256,
        bins_strategy='UD',
        norm_strategy='linear',
        upsample=4,
        in_channels=[16, 16, 16, 16],
        channels=128,
        align_corners=False),
    test_cfg=dict(mode='whole'))
