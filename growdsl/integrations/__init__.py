"""Growth inside a training loop that is not growdsl's: a hook API for custom loops
(`loop.GrowthPlan`) and a Hugging Face Trainer that runs a plan's stages
(`hf_trainer.GrowthTrainer`). Both import torch; see docs/integrations.md."""
