"""Configurations of the tiny SDXL-architecture fixture model (one place for every number)."""

UNET_CONFIG = dict(
    sample_size=32,
    in_channels=4,
    out_channels=4,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    block_out_channels=(32, 64, 128),
    layers_per_block=2,
    transformer_layers_per_block=[1, 2, 2],
    # As in SDXL's config this field really holds head *counts* (head dim 64).
    attention_head_dim=[1, 1, 2],
    use_linear_projection=True,
    cross_attention_dim=128,  # 64 (text_encoder) + 64 (text_encoder_2)
    addition_embed_type="text_time",
    addition_embed_type_num_heads=64,
    addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=6 * 256 + 64,  # 6 time ids + pooled text_embeds
    norm_num_groups=32,
    norm_eps=1e-5,
    act_fn="silu",
    flip_sin_to_cos=True,
    freq_shift=0,
    center_input_sample=False,
    upcast_attention=False,
)

VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=["DownEncoderBlock2D"] * 4,
    up_block_types=["UpDecoderBlock2D"] * 4,
    block_out_channels=(32, 64, 64, 64),
    layers_per_block=2,
    latent_channels=4,
    norm_num_groups=32,
    act_fn="silu",
    sample_size=256,
    scaling_factor=0.13025,
    force_upcast=True,
)

# CLIP ViT-L-like (SDXL text_encoder): quick_gelu. bos/eos/pad ids as in the published
# SDXL config (eos_token_id=2 selects transformers' legacy argmax(input_ids) pooling).
TE1_CONFIG = dict(
    vocab_size=49408,
    hidden_size=64,
    intermediate_size=256,
    num_hidden_layers=2,
    num_attention_heads=1,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
    projection_dim=64,
    bos_token_id=0,
    eos_token_id=2,
    pad_token_id=1,
)

# OpenCLIP bigG-like (SDXL text_encoder_2): gelu, with projection.
TE2_CONFIG = dict(TE1_CONFIG, num_hidden_layers=3, hidden_act="gelu", projection_dim=64)

SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    prediction_type="epsilon",
    interpolation_type="linear",
    use_karras_sigmas=False,
    timestep_spacing="leading",
    steps_offset=1,
)

# Extra keys SDXL's scheduler_config.json carries (kept for a faithful layout).
SCHEDULER_EXTRA = dict(clip_sample=False, sample_max_value=1.0, set_alpha_to_one=False, skip_prk_steps=True)

MODEL_MAX_LENGTH = 77
BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def _added_token(content, with_type):
    d = {"content": content, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}
    return {"__type": "AddedToken", **d} if with_type else d


def tokenizer_config(pad_token: str) -> dict:
    """tokenizer_config.json as in the published SDXL repository."""
    return {
        "add_prefix_space": False,
        "bos_token": _added_token(BOS, True),
        "clean_up_tokenization_spaces": True,
        "do_lower_case": True,
        "eos_token": _added_token(EOS, True),
        "errors": "replace",
        "model_max_length": MODEL_MAX_LENGTH,
        "pad_token": pad_token,
        "tokenizer_class": "CLIPTokenizer",
        "unk_token": _added_token(EOS, True),
    }


def special_tokens_map(pad_token: str) -> dict:
    return {
        "bos_token": _added_token(BOS, False),
        "eos_token": _added_token(EOS, False),
        "pad_token": pad_token,
        "unk_token": _added_token(EOS, False),
    }


TOKENIZER_PADS = {"tokenizer": EOS, "tokenizer_2": "!"}

# SGM single-file metadata (ModelSpec, as Stability's SDXL files carry).
SGM_METADATA = {
    "modelspec.sai_model_spec": "1.0.0",
    "modelspec.architecture": "stable-diffusion-xl-v1-base",
    "modelspec.implementation": "https://github.com/Stability-AI/generative-models",
    "modelspec.title": "tiny-sdxl (random weights, tlkit test fixture)",
    "modelspec.resolution": "256x256",
}
