// Pooling heads of embedding models: what turns a sequence of hidden states into one vector.
//
//  - pool_tokens: masked mean, first valid token (CLS) or last valid token (decoder embedders such as E5-Mistral and
//    NV-Embed's Mistral backbone read the last token; with left padding that is the row's final position).
//  - latent_attention_pool: NV-Embed's latent-attention layer (Lee et al. 2024, arXiv 2405.17428).
//  - attentive_stats_pool: ECAPA-TDNN's attentive statistics pooling (Desplanques et al. 2020, arXiv 2005.07143).
//  - target_attention: Deep Interest Network's local activation unit (Zhou et al., KDD 2018, arXiv 1706.06978).
//
// Every function checks every argument first (invalid_argument, nothing written), never throws, threads over the
// process-wide pool and gives the same bits for any thread count. Arithmetic is float32 with float64 row sums
// (means, variances, norms); each output agrees with a float64 evaluation of its definition to within 1e-6 of the
// output's largest magnitude on O(1) data (tests measure at most 5e-7 and assert 1e-5). Weight matrices are row-major; each function says which way round it reads them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tessera/status.h"

namespace tessera::pooling {

// Which tokens of a [batch, seq] block count. At most one of mask_u8, mask_i32 (nonzero = a real token; padding on
// either side or anywhere) and lengths (the first lengths[b] tokens of row b, lengths[b] in [0, seq]). None: all.
struct TokenMask {
  const std::uint8_t* mask_u8 = nullptr;   // [batch, seq]
  const std::int32_t* mask_i32 = nullptr;  // [batch, seq]
  const std::int32_t* lengths = nullptr;   // [batch]
};

enum class Mode { mean, cls, last };

// out [batch, dim] = per row: the mean of the valid tokens' hidden states (mean), the first valid token's (cls) or
// the last valid token's (last); a row with no valid token gives zeros. normalize: out row / max(|row|, 1e-12)
// (torch.nn.functional.normalize), zeros stay zeros. hidden is [batch, seq, dim]. out must not overlap the inputs.
Status pool_tokens(const float* hidden, std::size_t batch, std::size_t seq, std::size_t dim, Mode mode,
                   const TokenMask& mask, bool normalize, float* out) noexcept;

// ---- NV-Embed latent attention ----------------------------------------------------------------------------------
// Learned from NVIDIA's modeling_nvembed.py (NV-Embed-v2, as published with the checkpoint) and the candle port
// (huggingface/candle candle-transformers/src/models/nvembed_v2/model.rs). For each valid token x (a row of hidden):
//   y = x + W_out · attn(LN_q(x)) (+ b_out),  attn: heads of size head_dim; query W_q · LN_q(x); keys and values
//       [K | V] = W_kv · LN_c(latent_i) for each of the num_latents latents (the first heads·head_dim outputs of
//       to_kv are K, the rest V); softmax(q_h · k_h / sqrt(head_dim)) · v_h per head, heads concatenated;
//   z = y + W_2 · geglu(W_1 · LN_f(y) + b_1) + b_2,  geglu([a | g]) = a ⊙ gelu(g), gelu exact (erf): the first half of
//       W_1's outputs is the value, the second half the gate, as torch's chunk(2) and F.gelu;
// then out[b] = the mean of z over the row's valid tokens (zeros if none), L2-normalised when `normalize` (the
// reference's output_normalize, default on). LN: LayerNorm with weight and bias, eps `layer_norm_eps` (torch's 1e-5).
// The reference has no bias on to_out (to_out_bias may be null); the tokens are the queries, so padding never mixes
// into a valid token and padded tokens are skipped, not computed.
// Weights use torch.nn.Linear's layout, [out_features, in_features] row-major, as the checkpoint stores them.
struct LatentShape {
  std::size_t batch = 0, seq = 0, dim = 0;
  std::size_t heads = 0, head_dim = 0, num_latents = 0, ff_dim = 0;  // NV-Embed-v2: 8, 4096, 512, 16384
};

struct LatentWeights {
  const float* latents = nullptr;                                         // [num_latents, dim]
  const float* norm_weight = nullptr, *norm_bias = nullptr;               // [dim]: LN_q (cross_attend_blocks.0.norm)
  const float* context_norm_weight = nullptr, *context_norm_bias = nullptr;  // [dim]: LN_c (0.norm_context)
  const float* to_q = nullptr;                                            // [heads·head_dim, dim]
  const float* to_kv = nullptr;                                           // [2·heads·head_dim, dim]
  const float* to_out = nullptr;                                          // [dim, heads·head_dim]
  const float* to_out_bias = nullptr;                                     // [dim] or null (the reference: none)
  const float* ff_norm_weight = nullptr, *ff_norm_bias = nullptr;         // [dim]: LN_f (1.norm)
  const float* ff_in = nullptr, *ff_in_bias = nullptr;                    // [2·ff_dim, dim], [2·ff_dim] (1.fn.net.0)
  const float* ff_out = nullptr, *ff_out_bias = nullptr;                  // [dim, ff_dim], [dim] (1.fn.net.2)
};

// The attention inside runs on tessera::attention::attend when head_dim <= attention::kMaxHeadDim, and on matrix
// products with the same float32 softmax for larger heads (NV-Embed-v2's 4096).
Status latent_attention_pool(const float* hidden, const LatentShape& shape, const LatentWeights& weights,
                             const TokenMask& mask, float layer_norm_eps, bool normalize, float* out) noexcept;

// ---- ECAPA-TDNN attentive statistics pooling --------------------------------------------------------------------
// Learned from speechbrain (speechbrain/lobes/models/ECAPA_TDNN.py, AttentiveStatisticsPooling and TDNNBlock).
// x is [batch, channels, frames] (N, C, L); row n has lengths[n] valid frames (all when lengths is null), the rest
// padding. With n_v valid frames:
//   global context: mu_c = mean of x[c, t < n_v], sd_c = sqrt(max(mean of (x - mu_c)^2, eps)); the attention input is
//   [x; mu; sd] (3C channels, mu and sd repeated over time), else x alone (C channels);
//   h = tanh(BN(relu(W_t · input + b_t))), BN(u) = (u - running_mean) / sqrt(running_var + bn_eps) · gamma + beta;
//   e = W_c · h + b_c  ([C] per frame); alpha[c, t] = softmax over the valid frames t of e[c, t];
//   out[n] = [sum_t alpha x, sqrt(max(sum_t alpha (x - mean)^2, eps))]  ([2C]).
// A row with no valid frame gives zeros (the reference divides by zero there). Weights are Conv1d weights with the
// kernel axis of size 1 dropped: [out_channels, in_channels].
struct StatsShape {
  std::size_t batch = 0, channels = 0, frames = 0, attention_channels = 0;
  bool global_context = true;
};

struct StatsWeights {
  const float* tdnn_weight = nullptr;  // [attention_channels, 3·channels (global context) or channels]
  const float* tdnn_bias = nullptr;    // [attention_channels]
  const float* bn_mean = nullptr, *bn_var = nullptr, *bn_weight = nullptr, *bn_bias = nullptr;  // [attention_channels]
  const float* conv_weight = nullptr;  // [channels, attention_channels]
  const float* conv_bias = nullptr;    // [channels]
};

Status attentive_stats_pool(const float* x, const StatsShape& shape, const StatsWeights& weights,
                            const std::int32_t* lengths, float eps, float bn_eps, float* out) noexcept;

// ---- Deep Interest Network local activation unit ----------------------------------------------------------------
// Learned from zhougr1993/DeepInterestNetwork din/model.py (attention, attention_multi_items). For each batch row b,
// candidate item i (query q = query[b, i], H floats) and valid behaviour step t < lengths[b] (all seq when null) with
// key k = keys[b, t]:
//   f = [q, k, q - k, q ⊙ k] (4H);  s_t = w3 · act(W2ᵀ act(W1ᵀ f + b1) + b2) + b3
// with TensorFlow Dense kernels: W1 [4H, hidden1], W2 [hidden1, hidden2], w3 [hidden2] (Dense(1)'s kernel), b3 one
// float. act: sigmoid (the official code), relu, or prelu (x > 0 ? x : a ⊙ x with per-unit slopes prelu1 [hidden1],
// prelu2 [hidden2], as Keras PReLU). softmax: weights = softmax over the valid steps of s_t / sqrt(H) (the official
// code; its −2^32 padding score is an exact zero weight here); otherwise weights = s_t (the paper's unnormalised
// activation). out[b, i] = sum_t weight_t k_t; a row with no valid step gives zeros.
enum class Activation { sigmoid, relu, prelu };

struct TargetShape {
  std::size_t batch = 0, items = 1, seq = 0, dim = 0, hidden1 = 0, hidden2 = 0;
};

struct TargetWeights {
  const float* w1 = nullptr, *b1 = nullptr;  // [4·dim, hidden1], [hidden1]
  const float* w2 = nullptr, *b2 = nullptr;  // [hidden1, hidden2], [hidden2]
  const float* w3 = nullptr, *b3 = nullptr;  // [hidden2], [1]
  const float* prelu1 = nullptr, *prelu2 = nullptr;  // with Activation::prelu: [hidden1], [hidden2]
};

// query [batch, items, dim], keys [batch, seq, dim], out [batch, items, dim].
Status target_attention(const float* query, const float* keys, const TargetShape& shape, const TargetWeights& weights,
                        const std::int32_t* lengths, Activation activation, bool softmax, float* out) noexcept;

}  // namespace tessera::pooling
