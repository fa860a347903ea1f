-- depends: 0009_fire_events_space_time
--
-- The model zoo (DESIGN §6): every registered model records its architecture and the validated
-- config it was built with, so loading its weights builds the right module.  Rows registered
-- before this migration are BA-Net (the only architecture there was).
ALTER TABLE banet.model ADD COLUMN IF NOT EXISTS architecture text NOT NULL DEFAULT 'banet'
    CHECK (architecture ~ '^[a-z][a-z0-9_]*$');
ALTER TABLE banet.model ADD COLUMN IF NOT EXISTS arch_config jsonb NOT NULL DEFAULT '{}';

COMMENT ON COLUMN banet.model.architecture IS
    'Architecture name in banet_ops.models.zoo (banet, unet_convlstm, deepforest_early, deepforest_repr, segnet)';
COMMENT ON COLUMN banet.model.arch_config IS
    'The architecture''s validated config (pydantic model of its module), as recorded with the weights';
