"""Information theory of the Gray-Wyner network, computed (chapter "Gray-Wyner networks and lossy
common information"). NumPy, float64, bits.

- :mod:`~gwnlib.theory.entropy`: entropies, (conditional) mutual and interaction information.
- :mod:`~gwnlib.theory.rate_distortion`: Blahut-Arimoto; marginal, conditional and joint R(D),
  and closed forms to check them against.
- :mod:`~gwnlib.theory.common_information`: Gács-Körner K, Wyner C, the lossless Gray-Wyner
  trade-off, and the book's example sources (DSBS, common bit + DSBS).
- :mod:`~gwnlib.theory.gaussian`: closed forms for a jointly Gaussian pair.
- :mod:`~gwnlib.theory.gray_wyner`: the region's lower bounds (Fig. 1), transmit and receive rates.
- :mod:`~gwnlib.theory.theorem1` (with ``theorem1_counterexample`` and ``theorem1_search``):
  Theorem 1 (Eqs. 6-7) checked: pairs of test channels measured
  against its two sets, the counterexample to Lemma 1, the Markov-chain repair and a search.

Beyond two tasks (chapter "Beyond two tasks"):

- :mod:`~gwnlib.theory.multiterminal`: the K-receiver Gray-Wyner network as rates: a stream per
  set of receivers, transmit, receive and per-receiver rates, the generalised beta of Eq. 12
  (:func:`stream_prices`) and the lossless cut-set bounds.
- :mod:`~gwnlib.theory.multivariate`: co-information, total and dual total correlation, the
  Gács-Körner common part of any set of sources, and worked three-source examples.
- :mod:`~gwnlib.theory.multivariate_wyner`: Wyner's common information of K sources, computed.
"""

from gwnlib.theory.common_information import (
    common_bit_plus_dsbs,
    doubly_symmetric_binary_source,
    gacs_korner,
    gray_wyner_curve,
    lossless_gray_wyner,
    wyner_common_information,
    wyner_dsbs,
)
from gwnlib.theory.entropy import (
    binary_entropy,
    check_pmf,
    conditional_entropy,
    conditional_mutual_information,
    entropy,
    interaction_information,
    mutual_information,
)
from gwnlib.theory.gray_wyner import (
    GrayWynerBounds,
    lossless_bounds,
    receive_rate,
    transmit_rate,
)
from gwnlib.theory.multiterminal import (
    MultiterminalBounds,
    multiterminal_bounds,
    receiver_rates,
    stream_prices,
    stream_rates,
    subsets,
    weighted_rate,
)
from gwnlib.theory.multiterminal import receive_rate as multiterminal_receive_rate
from gwnlib.theory.multiterminal import transmit_rate as multiterminal_transmit_rate
from gwnlib.theory.multivariate import (
    CommonPart,
    co_information,
    common_part,
    common_part_profile,
    common_plus_noise_source,
    dual_total_correlation,
    marginal,
    noisy_copies_source,
    pairwise_bits_source,
    shared_bit_source,
    total_correlation,
    xor_source,
)
from gwnlib.theory.multivariate_wyner import MultivariateWyner, multivariate_wyner
from gwnlib.theory.rate_distortion import (
    binary_rate_distortion,
    blahut_arimoto,
    conditional_rate_distortion,
    dsbs_critical_distortion,
    dsbs_joint_rate_distortion,
    hamming_distortion,
    joint_rate_distortion,
    joint_rate_distortion_at,
    rate_distortion,
    rate_distortion_curve,
    squared_error_distortion,
    uniform_rate_distortion,
)
from gwnlib.theory.theorem1 import (
    PairEvaluation,
    conditional_interaction_information,
    evaluate_pair,
    joint_rate_distortion_point,
)
from gwnlib.theory.theorem1_counterexample import (
    Theorem1Counterexample,
    binary_symmetric_channel,
    dsbs_lossy_wyner,
    dsbs_lossy_wyner_achiever,
    theorem1_counterexample,
    theorem1_counterexample_numbers,
)
from gwnlib.theory.theorem1_search import (
    Theorem1Case,
    Theorem1Search,
    markov_receive_max,
    search_theorem1,
)

__all__ = [
    "CommonPart",
    "GrayWynerBounds",
    "MultiterminalBounds",
    "MultivariateWyner",
    "PairEvaluation",
    "Theorem1Case",
    "Theorem1Counterexample",
    "Theorem1Search",
    "binary_entropy",
    "binary_rate_distortion",
    "binary_symmetric_channel",
    "blahut_arimoto",
    "check_pmf",
    "co_information",
    "common_bit_plus_dsbs",
    "common_part",
    "common_part_profile",
    "common_plus_noise_source",
    "conditional_entropy",
    "conditional_interaction_information",
    "conditional_mutual_information",
    "conditional_rate_distortion",
    "doubly_symmetric_binary_source",
    "dsbs_critical_distortion",
    "dsbs_joint_rate_distortion",
    "dsbs_lossy_wyner",
    "dsbs_lossy_wyner_achiever",
    "dual_total_correlation",
    "entropy",
    "evaluate_pair",
    "gacs_korner",
    "gray_wyner_curve",
    "hamming_distortion",
    "interaction_information",
    "joint_rate_distortion",
    "joint_rate_distortion_at",
    "joint_rate_distortion_point",
    "lossless_bounds",
    "lossless_gray_wyner",
    "marginal",
    "markov_receive_max",
    "multiterminal_bounds",
    "multiterminal_receive_rate",
    "multiterminal_transmit_rate",
    "multivariate_wyner",
    "mutual_information",
    "noisy_copies_source",
    "pairwise_bits_source",
    "rate_distortion",
    "rate_distortion_curve",
    "receive_rate",
    "receiver_rates",
    "search_theorem1",
    "shared_bit_source",
    "squared_error_distortion",
    "stream_prices",
    "stream_rates",
    "subsets",
    "theorem1_counterexample",
    "theorem1_counterexample_numbers",
    "total_correlation",
    "transmit_rate",
    "uniform_rate_distortion",
    "weighted_rate",
    "wyner_common_information",
    "wyner_dsbs",
    "xor_source",
]
