#include "epoch_sums.h"

#include <cmath>

namespace moe::model {
namespace {

// A CPU scalar tensor's value (float32 or float64, the model's float types), read directly: item() would
// dispatch an op per loss, which is the overhead this file exists to avoid.
double scalar_value(const at::Tensor& t) {
  return t.scalar_type() == at::kDouble ? *t.data_ptr<double>() : static_cast<double>(*t.data_ptr<float>());
}

// Rows whose first largest logit (NaN counting as the largest, as in at::argmax) is the label.
template <typename scalar_t>
int64_t count_correct(const scalar_t* logits, const int64_t* labels, int64_t T, int64_t C) {
  int64_t correct = 0;
  for (int64_t t = 0; t < T; ++t) {
    const scalar_t* row = logits + t * C;
    int64_t best = 0;
    for (int64_t c = 1; c < C && !std::isnan(row[best]); ++c) {
      if (std::isnan(row[c]) || row[c] > row[best]) best = c;
    }
    correct += best == labels[t];
  }
  return correct;
}

}  // namespace

EpochAccumulators::EpochAccumulators(const at::Tensor& like, int64_t num_experts) {
  const auto opts = like.options();
  cross_entropy = at::zeros({}, opts.dtype(at::kDouble));
  aux = at::zeros({}, opts.dtype(at::kDouble));
  z = at::zeros({}, opts.dtype(at::kDouble));
  correct = at::zeros({}, opts.dtype(at::kLong));
  dropped = at::zeros({}, opts.dtype(at::kLong));
  load = at::zeros({num_experts}, opts.dtype(at::kLong));
}

void EpochAccumulators::zero() {
  for (at::Tensor* t : {&cross_entropy, &aux, &z, &correct, &dropped, &load}) t->zero_();
}

void EpochAccumulators::add_step(const ForwardResult& out, const at::Tensor& cross_entropy_loss,
                                 const at::Tensor& labels, double size) {
  at::NoGradGuard no_grad;
  if (!cross_entropy.is_cpu()) {  // device ops: a captured CUDA step cannot touch the host
    cross_entropy.add_(cross_entropy_loss, size);
    if (out.aux_loss.defined()) aux.add_(out.aux_loss, size);
    if (out.z_loss.defined()) z.add_(out.z_loss, size);
    if (out.routing.load.defined()) load.add_(out.routing.load);
    if (out.routing.dropped.defined()) dropped.add_(out.routing.dropped);  // (dropless: undefined)
    correct.add_(out.logits.argmax(1).eq(labels).sum());
    return;
  }
  *cross_entropy.data_ptr<double>() += scalar_value(cross_entropy_loss) * size;
  if (out.aux_loss.defined()) *aux.data_ptr<double>() += scalar_value(out.aux_loss) * size;
  if (out.z_loss.defined()) *z.data_ptr<double>() += scalar_value(out.z_loss) * size;
  if (out.routing.load.defined()) {
    const at::Tensor step_load = out.routing.load.contiguous();
    TORCH_CHECK(step_load.scalar_type() == at::kLong && step_load.numel() == load.numel(), "a step's expert loads "
                "must be ", load.numel(), " int64 counts, got ", step_load.numel(), " of ", step_load.scalar_type());
    int64_t* sum = load.data_ptr<int64_t>();
    const int64_t* add = step_load.data_ptr<int64_t>();
    for (int64_t e = 0; e < load.numel(); ++e) sum[e] += add[e];
  }
  if (out.routing.dropped.defined()) *dropped.data_ptr<int64_t>() += *out.routing.dropped.data_ptr<int64_t>();
  const at::Tensor logits = out.logits.contiguous(), y = labels.contiguous();
  const int64_t T = logits.size(0), C = logits.size(1);
  int64_t hits = 0;
  AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "count_correct", [&] {
    hits = count_correct(logits.data_ptr<scalar_t>(), y.data_ptr<int64_t>(), T, C);
  });
  *correct.data_ptr<int64_t>() += hits;
}

at::Tensor EpochAccumulators::read() const {
  return at::cat({at::stack({cross_entropy, aux, z, correct.to(at::kDouble), dropped.to(at::kDouble)}),
                  load.to(at::kDouble)})
      .cpu();
}

EpochSums EpochAccumulators::unpack(const at::Tensor& flat) {
  TORCH_CHECK(flat.scalar_type() == at::kDouble && flat.dim() == 1 && flat.numel() >= 5 && flat.is_contiguous(),
              "epoch sums: expected read()'s flat float64 tensor of 5 + experts entries, got ", flat.sizes());
  const double* v = flat.data_ptr<double>();
  return EpochSums{v[0], v[1], v[2], v[3], v[4], std::vector<double>(v + 5, v + flat.numel())};
}

}  // namespace moe::model
