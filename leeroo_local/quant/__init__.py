"""Making and measuring quantizations (`leeroo-local quant`), installed as leeroo_local.quant."""
