"""Loading libnabla.so and declaring the C functions the binding calls.

Internal to the nabla package: use nabla.load() to choose the library. Every
function used is declared here with its argtypes and restype, so ctypes
converts arguments (and rejects wrong ones) instead of guessing. Handles
(nb_graph *, nb_node *, ...) travel as c_void_p (Python ints); float arrays as
c_void_p too, given numpy's arr.ctypes.data of a C-contiguous float32 array.
"""
import ctypes
import ctypes.util
import os

NB_MAX_DIMS = 8
NB_END = (1 << 63) - 1  # INT64_MAX

c_int, c_uint, c_float, c_double = ctypes.c_int, ctypes.c_uint, ctypes.c_float, ctypes.c_double
c_int64, c_uint64, c_size_t = ctypes.c_int64, ctypes.c_uint64, ctypes.c_size_t
c_char_p, c_void_p = ctypes.c_char_p, ctypes.c_void_p
P = ctypes.POINTER

INT64_DIMS = c_int64 * NB_MAX_DIMS


class ConvOpts(ctypes.Structure):
    """nb_conv2d_opts"""
    _fields_ = [("stride_h", c_int), ("stride_w", c_int), ("pad_h", c_int), ("pad_w", c_int),
                ("dilation_h", c_int), ("dilation_w", c_int), ("groups", c_int)]


FILL_INPUTS = ctypes.CFUNCTYPE(c_int, c_void_p, c_void_p)


class GradcheckOpts(ctypes.Structure):
    """nb_gradcheck_opts"""
    _fields_ = [("eps", c_double), ("rtol", c_double), ("atol", c_double), ("batch", c_int),
                ("seed", c_uint64), ("fill_inputs", FILL_INPUTS), ("user", c_void_p)]


class GradcheckReport(ctypes.Structure):
    """nb_gradcheck_report"""
    _fields_ = [("checked", c_size_t), ("failed", c_size_t), ("max_abs_err", c_double),
                ("max_rel_err", c_double), ("worst", ctypes.c_char * 160)]


class SGDOpts(ctypes.Structure):
    """nb_sgd_opts"""
    _fields_ = [("lr", c_float), ("momentum", c_float), ("dampening", c_float),
                ("weight_decay", c_float), ("nesterov", c_int)]


class AdamOpts(ctypes.Structure):
    """nb_adam_opts"""
    _fields_ = [("lr", c_float), ("beta1", c_float), ("beta2", c_float), ("eps", c_float),
                ("weight_decay", c_float), ("amsgrad", c_int)]


class RMSpropOpts(ctypes.Structure):
    """nb_rmsprop_opts"""
    _fields_ = [("lr", c_float), ("alpha", c_float), ("eps", c_float), ("weight_decay", c_float),
                ("momentum", c_float), ("centered", c_int)]


class CsvOpts(ctypes.Structure):
    """nb_csv_opts"""
    _fields_ = [("header", c_int), ("label_column", c_int), ("regression", c_int),
                ("delimiter", ctypes.c_char)]


class LayerInfo(ctypes.Structure):
    """nb_layer_info"""
    _fields_ = [("kind", c_char_p), ("index", c_int), ("line", c_int), ("ndim", c_int),
                ("shape", INT64_DIMS), ("params", c_size_t)]


G, N, PL, O, M, D = c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p  # handles
F = c_void_p  # float * (numpy arr.ctypes.data)

# name: (restype, argtypes)
_PROTOS = {
    "nb_last_error": (c_char_p, []),
    "nb_status_str": (c_char_p, [c_int]),
    # graphs
    "nb_graph_create": (G, []),
    "nb_graph_free": (None, [G]),
    "nb_graph_status": (c_int, [G]),
    "nb_graph_error": (c_char_p, [G]),
    "nb_graph_node_count": (c_int, [G]),
    "nb_graph_node": (N, [G, c_int]),
    "nb_graph_find": (N, [G, c_char_p]),
    "nb_input": (N, [G, c_char_p, c_int, P(c_int64)]),
    "nb_param": (N, [G, c_char_p, c_int, P(c_int64)]),
    "nb_const": (N, [G, c_char_p, c_int, P(c_int64), F]),
    "nb_scalar": (N, [G, c_float]),
    "nb_node_name": (c_char_p, [N]),
    "nb_node_op": (c_char_p, [N]),
    "nb_node_id": (c_int, [N]),
    "nb_node_input_count": (c_int, [N]),
    "nb_node_input": (N, [N, c_int]),
    "nb_node_shape": (c_int, [N, P(c_int64)]),
    "nb_node_numel": (c_size_t, [N]),
    "nb_node_is_param": (c_int, [N]),
    "nb_node_requires_grad": (c_int, [N]),
    "nb_node_data": (F, [N]),
    "nb_node_grad": (F, [N]),
    "nb_node_keep": (None, [N]),
    "nb_graph_param_count": (c_int, [G]),
    "nb_graph_param": (N, [G, c_int]),
    "nb_graph_param_numel": (c_size_t, [G]),
    "nb_graph_zero_grad": (None, [G]),
    # ops
    "nb_add": (N, [G, N, N]),
    "nb_sub": (N, [G, N, N]),
    "nb_mul": (N, [G, N, N]),
    "nb_div": (N, [G, N, N]),
    "nb_neg": (N, [G, N]),
    "nb_scale": (N, [G, N, c_float]),
    "nb_add_scalar": (N, [G, N, c_float]),
    "nb_exp": (N, [G, N]),
    "nb_log": (N, [G, N]),
    "nb_sqrt": (N, [G, N]),
    "nb_pow": (N, [G, N, c_float]),
    "nb_abs": (N, [G, N]),
    "nb_relu": (N, [G, N]),
    "nb_leaky_relu": (N, [G, N, c_float]),
    "nb_elu": (N, [G, N, c_float]),
    "nb_gelu": (N, [G, N, c_int]),
    "nb_sigmoid": (N, [G, N]),
    "nb_tanh": (N, [G, N]),
    "nb_softplus": (N, [G, N, c_float, c_float]),
    "nb_matmul": (N, [G, N, N]),
    "nb_transpose": (N, [G, N, c_int, c_int]),
    "nb_permute": (N, [G, N, P(c_int)]),
    "nb_reshape": (N, [G, N, c_int, P(c_int64)]),
    "nb_flatten": (N, [G, N]),
    "nb_concat": (N, [G, c_int, P(c_void_p), c_int]),
    "nb_slice": (N, [G, N, c_int, c_int64, c_int64]),
    "nb_sum": (N, [G, N, c_int, P(c_int), c_int]),
    "nb_mean": (N, [G, N, c_int, P(c_int), c_int]),
    "nb_max": (N, [G, N, c_int, P(c_int), c_int]),
    "nb_softmax": (N, [G, N, c_int]),
    "nb_log_softmax": (N, [G, N, c_int]),
    "nb_conv2d": (N, [G, N, N, N, P(ConvOpts)]),
    "nb_max_pool2d": (N, [G, N, c_int, c_int, c_int, c_int, c_int, c_int]),
    "nb_avg_pool2d": (N, [G, N, c_int, c_int, c_int, c_int, c_int, c_int]),
    "nb_linear": (N, [G, N, N, N]),
    "nb_dropout": (N, [G, N, c_float]),
    "nb_batchnorm": (N, [G, N, N, N, N, N, N, c_float, c_float]),
    "nb_layernorm": (N, [G, N, c_int, N, N, c_float]),
    "nb_embedding": (N, [G, N, N]),
    "nb_softmax_cross_entropy": (N, [G, N, N]),
    "nb_softmax_cross_entropy_smooth": (N, [G, N, N, c_float]),
    "nb_nll": (N, [G, N, N]),
    "nb_l1": (N, [G, N, N]),
    "nb_huber": (N, [G, N, N, c_float]),
    "nb_mse": (N, [G, N, N]),
    "nb_bce_with_logits": (N, [G, N, N]),
    # plans
    "nb_plan_create": (PL, [G, N, c_int, c_uint]),
    "nb_plan_free": (None, [PL]),
    "nb_plan_set_training": (None, [PL, c_int]),
    "nb_plan_seed": (None, [PL, c_uint64]),
    "nb_plan_forward": (c_int, [PL]),
    "nb_plan_backward": (c_int, [PL, F]),
    "nb_plan_data": (F, [PL, N, P(c_size_t)]),
    "nb_plan_grad": (F, [PL, N, P(c_size_t)]),
    "nb_plan_set_input": (c_int, [PL, N, F, c_size_t]),
    "nb_plan_shape": (c_int, [PL, N, P(c_int64)]),
    "nb_plan_memory": (c_size_t, [PL]),
    "nb_gradcheck": (c_int, [G, N, P(GradcheckOpts), P(GradcheckReport)]),
    # optimizers
    "nb_sgd_create": (O, [G, P(SGDOpts)]),
    "nb_adam_create": (O, [G, P(AdamOpts)]),
    "nb_adamw_create": (O, [G, P(AdamOpts)]),
    "nb_rmsprop_create": (O, [G, P(RMSpropOpts)]),
    "nb_optim_free": (None, [O]),
    "nb_optim_step": (c_int, [O]),
    "nb_optim_set_lr": (None, [O, c_float]),
    "nb_optim_lr": (c_float, [O]),
    "nb_optim_name": (c_char_p, [O]),
    "nb_optim_steps": (ctypes.c_long, [O]),
    "nb_optim_set_steps": (None, [O, ctypes.c_long]),
    "nb_optim_state_count": (c_int, [O]),
    "nb_optim_state_name": (c_char_p, [O, c_int]),
    "nb_optim_state": (F, [O, c_int]),
    "nb_clip_grad_norm": (c_float, [G, c_float]),
    # models and checkpoints
    "nb_model_from_text": (M, [c_char_p, c_char_p, c_uint64]),
    "nb_model_from_file": (M, [c_char_p, c_uint64]),
    "nb_model_free": (None, [M]),
    "nb_model_init": (None, [M, c_uint64]),
    "nb_model_spec": (c_char_p, [M]),
    "nb_model_graph": (G, [M]),
    "nb_model_input": (N, [M]),
    "nb_model_target": (N, [M]),
    "nb_model_output": (N, [M]),
    "nb_model_loss": (N, [M]),
    "nb_model_is_classifier": (c_int, [M]),
    "nb_model_layer_count": (c_int, [M]),
    "nb_model_layer": (c_int, [M, c_int, P(LayerInfo)]),
    "nb_model_input_shape": (c_int, [M, P(c_int64)]),
    "nb_model_predict": (c_int, [M, F, c_size_t, F]),
    "nb_model_output_size": (c_size_t, [M]),
    "nb_checkpoint_save": (c_int, [c_char_p, M, c_void_p, P(c_char_p)]),
    "nb_checkpoint_load": (M, [c_char_p]),
    # data sets
    "nb_dataset_load_idx_dir": (D, [c_char_p, c_char_p]),
    "nb_dataset_load_csv": (D, [c_char_p, P(CsvOpts)]),
    "nb_dataset_synthetic": (D, [c_char_p, c_size_t, c_uint64]),
    "nb_dataset_free": (None, [D]),
    "nb_dataset_count": (c_size_t, [D]),
    "nb_dataset_shape": (c_int, [D, P(c_int64)]),
    "nb_dataset_sample_size": (c_size_t, [D]),
    "nb_dataset_classes": (c_int, [D]),
    "nb_dataset_target_size": (c_size_t, [D]),
    "nb_dataset_features": (F, [D]),
    "nb_dataset_targets": (F, [D]),
}

lib = None        # the loaded ctypes.CDLL, once load() succeeded
lib_path = None   # the path or name it was loaded from


def candidates():
    """Where load(None) looks, in order: $NABLA_LIB, the build tree, the system."""
    env = os.environ.get("NABLA_LIB")
    if env:
        return [env]
    here = os.path.dirname(os.path.abspath(__file__))
    out = [os.path.normpath(os.path.join(here, "..", "..", "build", "libnabla.so"))]
    found = ctypes.util.find_library("nabla")
    out.append(found or "libnabla.so.0")
    return out


def load(path=None):
    """Loads the library (see nabla.load) and returns the ctypes.CDLL."""
    global lib, lib_path
    if lib is not None:
        if path is None or path == lib_path:
            return lib
        raise RuntimeError("nabla: the library is already loaded from %s; "
                           "it cannot be replaced by %s in this process" % (lib_path, path))
    tried = [path] if path is not None else candidates()
    errors = []
    for cand in tried:
        # a path that names no file (and is not a bare soname) is skipped quietly
        if os.sep in cand and not os.path.exists(cand):
            errors.append("%s: no such file" % cand)
            continue
        try:
            dll = ctypes.CDLL(cand)
        except OSError as e:
            errors.append(str(e))
            continue
        missing = [name for name in _PROTOS if not hasattr(dll, name)]
        if missing:
            errors.append("%s: lacks %s" % (cand, ", ".join(missing[:5])))
            continue
        for name, (res, args) in _PROTOS.items():
            fn = getattr(dll, name)
            fn.restype = res
            fn.argtypes = args
        lib, lib_path = dll, cand
        return lib
    raise OSError("nabla: cannot load libnabla (set NABLA_LIB to the path of libnabla.so, "
                  "or build it with make): " + "; ".join(errors))


def get():
    """The loaded library, loading it from the default places on first use."""
    return lib if lib is not None else load()
